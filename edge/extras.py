"""Optional dependencies: import them where a command needs them, or say which extra to install.

The gateway install (``pip install vitals-edge``) carries what the daemon runs
(BLE, serial, models, sync). Reading PhysioNet WFDB records (``wfdb``, which
pulls pandas) and evidence plots (matplotlib) are in the ``tools`` extra;
training is in ``train``. A command that needs a missing one fails with one line
naming the extra (:class:`~edge.errors.MissingExtraError`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edge.errors import MissingExtraError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise MissingExtraError(
            f"{purpose} needs the '{extra}' extra ({exc.name} is not installed): "
            f"pip install 'vitals-edge[{extra}]' (in a checkout: pip install -e '.[{extra}]')"
        ) from exc
