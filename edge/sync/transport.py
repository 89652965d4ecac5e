"""HTTP transport: one transaction Bundle in, one transaction-response out (httpx).

:class:`Uploader` owns an ``httpx.AsyncClient`` (TLS verification on by default, a
configurable CA bundle, an optional client certificate for mutual TLS, the auth
flow) and turns HTTP outcomes into the three failures a caller can act on:

* :class:`~edge.errors.TransientSyncError`: 5xx, 408, 429, timeouts, dropped
  connections; ``retry_after`` carries a 429/503 ``Retry-After``;
* :class:`~edge.errors.AuthError`: 401/403 after the auth flow renewed its token;
* :class:`~edge.errors.BundleRejectedError`: 4xx on content (400, 404, 409, 412,
  413, 422), or a transaction-response with an entry that is not 200/201.

Compression is negotiated, not assumed: bodies are plain JSON unless ``[sync] gzip``
is on; a server that answers 415 to a gzip body gets the same bundle again as plain
JSON at once, and plain JSON from then on (one log line says so).

No policy here (no retries, no backoff): that is :mod:`edge.sync.engine`.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import ssl
import time
from typing import Any

import httpx

from edge.config import EdgeConfig
from edge.errors import AuthError, BundleRejectedError, ConfigError, TransientSyncError
from edge.sync.auth import make_auth

FHIR_JSON = "application/fhir+json"
log = logging.getLogger(__name__)


def ssl_context(cfg: EdgeConfig) -> ssl.SSLContext | bool:
    tls = cfg.tls
    if not tls.verify:
        return False
    try:
        ctx = ssl.create_default_context(cafile=tls.ca_bundle or None)
        if tls.client_cert:
            ctx.load_cert_chain(tls.client_cert, tls.client_key or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls: cannot load certificates ({exc})") from exc
    return ctx


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class Uploader:
    """``async with Uploader(cfg) as up: response = await up.send(bundle)``."""

    def __init__(self, cfg: EdgeConfig, url: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.cfg = cfg
        self.url = (url or cfg.sync.url).rstrip("/")
        if not self.url:
            raise ConfigError("sync.url: no backend configured")
        if not self.url.startswith("https://") and cfg.auth.mode != "none" and not (
                self.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))):
            raise ConfigError("sync.url: credentials are only sent over https (or to loopback)")
        self._auth = make_auth(cfg.auth, self.url)
        self._verify = ssl_context(cfg)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.bytes_sent = 0
        self.gzip = cfg.sync.gzip  # turned off for good when the server refuses it (415)

    async def __aenter__(self) -> Uploader:
        s = self.cfg.sync
        self._client = httpx.AsyncClient(
            auth=self._auth, verify=self._verify, transport=self._transport,
            timeout=httpx.Timeout(s.request_timeout_s, connect=s.connect_timeout_s),
            headers={"Accept": FHIR_JSON, "User-Agent": "vitals-edge"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle; return the transaction-response Bundle."""
        if self._client is None:
            raise RuntimeError("Uploader used outside 'async with'")
        plain = json.dumps(bundle, separators=(",", ":")).encode()
        if self.gzip:
            resp = await self._post(gzip.compress(plain, compresslevel=6),
                                    {"Content-Type": FHIR_JSON, "Content-Encoding": "gzip"})
            if resp.status_code != 415:
                return self._check(resp)
            self.gzip = False
            log.warning("sync: the backend refused a gzip-compressed request (HTTP 415); "
                        "sending plain JSON from now on (set [sync] gzip = false)")
        return self._check(await self._post(plain, {"Content-Type": FHIR_JSON}))

    async def _post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        assert self._client is not None
        self.bytes_sent += len(body)
        try:
            return await self._client.post(self.url + "/", content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientSyncError(f"backend timed out ({type(exc).__name__})") from exc
        except (httpx.TransportError, ssl.SSLError) as exc:
            raise TransientSyncError(f"backend unreachable ({type(exc).__name__})") from exc

    def _check(self, resp: httpx.Response) -> dict[str, Any]:
        code = resp.status_code
        if code in (429, 503):
            raise TransientSyncError(
                f"backend busy: HTTP {code}",
                retry_after=retry_after_seconds(resp.headers.get("Retry-After")))
        if code >= 500 or code == 408:
            raise TransientSyncError(f"backend error: HTTP {code}")
        if code in (401, 403):
            raise AuthError(f"backend refused our credentials: HTTP {code}")
        if code >= 400:
            raise BundleRejectedError(f"backend rejected the bundle: HTTP {code}"
                                      f"{_issue(resp)}", code)
        try:
            out: dict[str, Any] = resp.json()
        except ValueError as exc:
            raise TransientSyncError("backend answered with something that is not JSON") from exc
        if out.get("type") != "transaction-response":
            raise TransientSyncError("backend answered without a transaction-response Bundle")
        for i, entry in enumerate(out.get("entry", [])):
            status = str(entry.get("response", {}).get("status", ""))
            if not status.startswith(("200", "201")):
                raise BundleRejectedError(f"entry {i} answered {status!r}",
                                          int(status[:3]) if status[:3].isdigit() else 0)
        return out


def _issue(resp: httpx.Response) -> str:
    """The first OperationOutcome issue code (never diagnostics: they may echo content)."""
    try:
        issue = resp.json().get("issue", [{}])[0]
        return f" ({issue.get('code', '?')})"
    except (ValueError, AttributeError, IndexError):
        return ""
