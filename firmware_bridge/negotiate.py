"""Protocol version negotiation: the gateway's side of HELLO -> WELCOME.

Separate from the codec because it is policy, not encoding: the device offers
the range [proto_min, proto_max] in HELLO, the gateway answers WELCOME with
the highest version both support, or NO_COMMON_VERSION and chosen_version 0.
"""

from __future__ import annotations

from collections.abc import Collection

from .constants import SUPPORTED_VERSIONS, WelcomeResult
from .messages import Hello, Welcome

__all__ = ["choose_version"]


def choose_version(
    hello: Hello,
    supported: Collection[int] = SUPPORTED_VERSIONS,
    *,
    seq: int = 0,
    timestamp_us: int = 0,
    gateway_time_us: int = 0,
) -> Welcome:
    """Build the WELCOME answering ``hello``: highest common version, or a refusal."""
    common = [v for v in supported if hello.proto_min <= v <= hello.proto_max]
    if not common:
        return Welcome(
            chosen_version=0, result=WelcomeResult.NO_COMMON_VERSION,
            gateway_time_us=gateway_time_us, seq=seq, timestamp_us=timestamp_us,
        )
    return Welcome(
        chosen_version=max(common), result=WelcomeResult.OK,
        gateway_time_us=gateway_time_us, seq=seq, timestamp_us=timestamp_us,
    )
