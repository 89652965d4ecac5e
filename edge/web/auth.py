"""The web view's access token: read from a file only its owner can read.

Listening on anything other than loopback needs a token (``[web] token_file``,
checked by :class:`~edge.config.WebConfig`); with a token every request needs
it. The file must be mode 0600 (or stricter): a token others can read is no
secret, so such a file is refused at ``edge config check`` and at start.
"""

from __future__ import annotations

import hmac
import os
import stat
from pathlib import Path

from edge.errors import ConfigError

#: Shortest token accepted (characters): 128 bits as hex is 32.
MIN_TOKEN_CHARS = 16


def read_token(path: str | Path) -> str:
    """The token in ``path``; ConfigError (one line) when missing, readable by others, short."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise ConfigError(f"web.token_file: {p}: cannot read ({exc.strerror})") from exc
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise ConfigError(f"web.token_file: {p} is mode {mode:04o}: it must be readable by its "
                          f"owner only (chmod 600 {p})")
    try:
        token = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"web.token_file: {p}: cannot read ({exc})") from exc
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ConfigError(f"web.token_file: {p}: the token must be one word of at least "
                          f"{MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)")
    return token


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison (no timing hint about how much of a guess was right)."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
