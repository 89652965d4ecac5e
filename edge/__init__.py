"""vitals-edge: an edge gateway for wearables with on-device vital-sign anomaly detection.

Not a medical device: see the README's "Intended use" before any clinical use.
"""

from edge.errors import EdgeError
from edge.types import Beat, Block, ChannelSpec, Episode, Gap, Priority, StreamKey, VitalSample

__version__ = "0.1.0"

__all__ = [
    "Beat",
    "Block",
    "ChannelSpec",
    "EdgeError",
    "Episode",
    "Gap",
    "Priority",
    "StreamKey",
    "VitalSample",
    "__version__",
]
