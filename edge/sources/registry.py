"""Live transports by config type. Each transport module registers its builder here."""

from __future__ import annotations

from collections.abc import Callable

from edge.config import SourceConfig
from edge.errors import ConfigError
from edge.sources.base import Source

_BUILDERS: dict[str, Callable[[SourceConfig, int], Source]] = {}


def register(kind: str, builder: Callable[[SourceConfig, int], Source]) -> None:
    _BUILDERS[kind] = builder


def build(cfg: SourceConfig, index: int) -> Source:
    if cfg.type == "serial":
        import edge.sources.serial  # noqa: F401 - registers itself
    elif cfg.type == "ble":
        import edge.sources.ble  # noqa: F401 - registers itself
    builder = _BUILDERS.get(cfg.type)
    if builder is None:
        raise ConfigError(f"sources[{index}]: the {cfg.type!r} transport is not available")
    return builder(cfg, index)
