"""Authentication for the clinical backend, as ``httpx.Auth`` flows (httpx style).

* :class:`BearerFileAuth`: a static bearer token read from a file.
* :class:`SmartBackendAuth`: SMART Backend Services (OAuth2 client credentials with a
  ``private_key_jwt`` client assertion, spec section 8). The token is renewed
  ``refresh_before_s`` before it expires, and once more (with one retry of the
  request) when the server answers 401 anyway (revoked, clock skew). There is no
  refresh token in this flow: renewing means a new signed assertion with a new jti.

Secrets are read from files and never appear in a log line or an error message.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator
from pathlib import Path

import httpx
import jwt

from edge.config import AuthConfig
from edge.errors import AuthError, ConfigError, TransientSyncError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def read_secret(path: str, what: str) -> str:
    """The content of a secret file (stripped); errors name the file, never the content."""
    if not path:
        raise ConfigError(f"{what}: no file configured")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path} ({exc.strerror})") from exc
    if not value:
        raise ConfigError(f"{what}: {path} is empty")
    return value


class BearerFileAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` with the token read once from a file."""

    def __init__(self, token_file: str) -> None:
        self._token = read_secret(token_file, "bearer token")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:  # never show the token
        return "BearerFileAuth(<secret>)"


class SmartBackendAuth(httpx.Auth):
    """SMART Backend Services client: signed JWT assertion -> access token -> Bearer."""

    requires_response_body = True

    def __init__(self, cfg: AuthConfig, fhir_base: str,
                 clock: Callable[[], float] = time.time) -> None:
        if not cfg.client_id:
            raise ConfigError("auth.client_id: required for mode 'smart'")
        if cfg.algorithm not in ("RS384", "ES384"):
            raise ConfigError(f"auth.algorithm: expected RS384 or ES384, got {cfg.algorithm!r}")
        self.cfg = cfg
        self._key = read_secret(cfg.private_key_file, "auth.private_key_file")
        self._base = fhir_base.rstrip("/")
        self._token_url = cfg.token_url
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"SmartBackendAuth(client_id={self.cfg.client_id!r})"

    def _assertion(self, aud: str) -> str:
        now = int(self._clock())
        claims = {"iss": self.cfg.client_id, "sub": self.cfg.client_id, "aud": aud,
                  "exp": now + 240, "iat": now, "jti": str(uuid.uuid4())}
        headers = {"typ": "JWT", **({"kid": self.cfg.key_id} if self.cfg.key_id else {})}
        return jwt.encode(claims, self._key, algorithm=self.cfg.algorithm, headers=headers)

    def _fetch_token(self) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._token_url:
            resp = yield httpx.Request("GET", f"{self._base}/.well-known/smart-configuration")
            if resp.status_code != 200:
                raise TransientSyncError(
                    f"SMART discovery failed: HTTP {resp.status_code} from "
                    f"{self._base}/.well-known/smart-configuration")
            self._token_url = str(resp.json().get("token_endpoint", ""))
            if not self._token_url:
                raise AuthError("SMART discovery: no token_endpoint in smart-configuration")
        resp = yield httpx.Request("POST", self._token_url, data={
            "grant_type": "client_credentials", "scope": self.cfg.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self._assertion(self._token_url)})
        if resp.status_code in (400, 401, 403):
            raise AuthError(f"token endpoint refused client {self.cfg.client_id!r}: "
                            f"HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise TransientSyncError(f"token endpoint: HTTP {resp.status_code}")
        body = resp.json()
        self._token = str(body["access_token"])
        self._expires = self._clock() + float(body.get("expires_in", 300))
        self.tokens_fetched += 1

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None or self._clock() >= self._expires - self.cfg.refresh_before_s:
            yield from self._fetch_token()
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:  # revoked or expired early: renew once and retry
            self._token = None
            yield from self._fetch_token()
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


def make_auth(cfg: AuthConfig, fhir_base: str) -> httpx.Auth | None:
    if cfg.mode == "none":
        return None
    if cfg.mode == "bearer":
        return BearerFileAuth(cfg.token_file)
    if cfg.mode == "smart":
        return SmartBackendAuth(cfg, fhir_base)
    raise ConfigError(f"auth.mode: expected 'none', 'bearer' or 'smart', got {cfg.mode!r}")
