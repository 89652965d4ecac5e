"""The web view's HTTP server (aiohttp, on the daemon's event loop).

Read-only: every route is a GET except ``POST /login``, which only checks the
token and sets a cookie; nothing changes the daemon's state. Routes:

=============================  ===============================================
``GET /``                      the page (``static/index.html``)
``GET /static/...``            its script, style and the vendored uPlot
``GET /api/status``            sources, numerics, NEWS2, link, outbox (JSON)
``GET /api/episodes``          newest first, with ids (``?limit=N``, <= 1000)
``GET /api/episodes/{id}``     one episode
``GET /api/episodes/{id}/evidence``  its evidence strip with beats, RR, quality
``GET /api/live``              server-sent events: a snapshot, then updates
``GET|POST /login``            the token form (only with a token)
=============================  ===============================================

With a token (``[web] token_file``) every request needs it: ``Authorization:
Bearer TOKEN``, or the HttpOnly cookie that ``POST /login`` sets (an HMAC of
the token, never the token itself). Without it: 401. Every response carries a
strict Content-Security-Policy (scripts, styles and connections from this
origin only; no inline code), ``nosniff``, no framing and no referrer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.config import EdgeConfig, is_loopback
from edge.errors import ConfigError, EdgeError
from edge.store.outbox import Outbox
from edge.web.auth import token_matches
from edge.web.evidence import EvidenceView
from edge.web.live import LiveView
from edge.web.status import episode_json, recent_episodes

log = logging.getLogger(__name__)

STATIC = Path(str(resources.files("edge.web") / "static"))
COOKIE = "edge_session"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
_OPEN_PATHS = {"/login", "/static/app.css"}  # reachable without the token (the login form)

Annotate = Callable[[str], Awaitable[EvidenceView | None]]


def session_value(token: str) -> str:
    """The cookie value for ``token``: an HMAC, so the cookie never holds the token itself."""
    return hmac.new(token.encode(), b"vitals-edge web session", hashlib.sha256).hexdigest()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, separators=(",", ":")), status=status,
                        content_type="application/json",
                        headers={"Cache-Control": "no-store"})


class WebServer:
    """``async with WebServer(...) as server:`` serves the view; ``server.port`` is bound."""

    def __init__(self, config: EdgeConfig, live: LiveView, outbox: Outbox | None,
                 annotate: Annotate | None = None, token: str | None = None) -> None:
        self.config = config
        self.live = live
        self.outbox = outbox
        self.annotate = annotate
        self.token = token
        self._session = session_value(token) if token else None
        self.host, self.port = config.web.host_port
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._streams: set[asyncio.Task[Any]] = set()
        self._evidence: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()

    # -- lifecycle ---------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.on_response_prepare.append(self._headers)
        r = app.router
        r.add_get("/", self._index)
        r.add_get("/login", self._login_form)
        r.add_post("/login", self._login)
        r.add_get("/api/status", self._status)
        r.add_get("/api/episodes", self._episodes)
        r.add_get("/api/episodes/{id}", self._episode)
        r.add_get("/api/episodes/{id}/evidence", self._evidence_strip)
        r.add_get("/api/live", self._live)
        r.add_static("/static", STATIC, show_index=False, follow_symlinks=False)
        return app

    async def __aenter__(self) -> WebServer:
        tls = self._tls()
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True,
                           ssl_context=tls)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self._ticker = asyncio.get_running_loop().create_task(self.live.run(), name="web-ticker")
        scheme = "https" if self.config.web.tls_cert else "http"
        log.info("web view on %s://%s:%d/ (%s)", scheme, self.host, self.port,
                 "token required" if self.token else "no token: loopback only")
        if scheme == "http" and not is_loopback(self.host):
            log.warning("web view: listening on %s without TLS: the token travels in clear; "
                        "set [web] tls_cert/tls_key or put a TLS proxy in front", self.host)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for task in list(self._streams):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    def _tls(self) -> ssl.SSLContext | None:
        w = self.config.web
        if not w.tls_cert:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(w.tls_cert, w.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"web.tls_cert/tls_key: cannot load ({exc})") from exc
        return ctx

    # -- middleware and headers -------------------------------------------------------

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        response.headers["Server"] = "vitals-edge"  # no library versions to an unknown client

    def authorised(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and token_matches(self.token, auth[7:].strip()):
            return True
        cookie = request.cookies.get(COOKIE)
        return self._session is not None and token_matches(self._session, cookie)

    @web.middleware
    async def _auth(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if request.path in _OPEN_PATHS or self.authorised(request):
            try:
                return await handler(request)
            except EdgeError as exc:  # e.g. the outbox unreadable: one line, the daemon goes on
                log.error("web view: %s failed: %s", request.path.split("/")[2:3] or "page",
                          type(exc).__name__)
                return _json({"error": "temporarily unavailable"}, 503)
        if request.path.startswith("/api/"):
            return web.Response(
                text='{"error":"unauthorized: send Authorization: Bearer TOKEN"}', status=401,
                content_type="application/json", headers={"WWW-Authenticate": "Bearer"})
        return self._login_page(status=401)

    # -- pages ------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    def _login_page(self, status: int = 200, error: str = "") -> web.Response:
        html = (STATIC / "login.html").read_text(encoding="utf-8")
        html = html.replace("<!--error-->", f'<p class="error">{error}</p>' if error else "")
        return web.Response(text=html, status=status, content_type="text/html",
                            headers={"WWW-Authenticate": "Bearer",
                                     "Cache-Control": "no-store"})

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        if self.token is None:
            raise web.HTTPSeeOther("/")
        return self._login_page()

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if self.token is None or self._session is None:
            raise web.HTTPSeeOther("/")
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not token_matches(self.token, given.strip()):
            log.warning("web view: a login with a wrong token was refused")
            return self._login_page(status=401, error="Wrong token.")
        resp = web.HTTPSeeOther("/")
        resp.set_cookie(COOKIE, self._session, httponly=True, samesite="Strict", path="/",
                        secure=request.secure)
        raise resp

    # -- API --------------------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return _json(self.live.status())

    async def _episodes(self, request: web.Request) -> web.StreamResponse:
        try:
            limit = min(1000, max(1, int(request.query.get("limit", "100"))))
        except ValueError:
            return _json({"error": "limit must be an integer"}, 400)
        if self.outbox is None:
            return _json([])
        try:
            return _json(recent_episodes(self.outbox, limit))
        except EdgeError as exc:
            log.error("web view: episodes not readable: %s", exc)
            return _json({"error": "outbox not readable"}, 503)

    async def _episode(self, request: web.Request) -> web.StreamResponse:
        row = self.outbox.get(request.match_info["id"]) if self.outbox is not None else None
        if row is None:
            return _json({"error": "no such episode"}, 404)
        return _json(episode_json(row, bool(self.outbox and self.outbox.evidence_ids(
            [row.episode.id]))))

    async def _evidence_strip(self, request: web.Request) -> web.StreamResponse:
        event_id = request.match_info["id"]
        row = self.outbox.get(event_id) if self.outbox is not None else None
        if row is None or self.annotate is None:
            return _json({"error": "no such episode"}, 404)
        key = (event_id, row.revision)
        cached = self._evidence.get(key)
        if cached is None:
            try:
                view = await self.annotate(event_id)
            except EdgeError as exc:
                log.error("web view: evidence for an episode not readable: %s", exc)
                return _json({"error": "evidence not readable"}, 503)
            if view is None:
                return _json({"error": "no evidence stored for this episode"}, 404)
            cached = view.to_dict()
            self._evidence[key] = cached
            while len(self._evidence) > 32:
                self._evidence.popitem(last=False)
        return _json(cached)

    async def _live(self, request: web.Request) -> web.StreamResponse:
        if len(self.live.subscribers) >= self.config.web.max_clients:
            return _json({"error": "too many open views"}, 503)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
        await resp.prepare(request)
        sub, first = self.live.subscribe()
        task = asyncio.current_task()
        transport = request.transport

        def drop() -> None:
            if transport is not None:
                transport.close()  # a write waiting on a stalled client fails at once

        sub.on_drop = drop
        if task is not None:
            self._streams.add(task)
        try:
            await resp.write(b"retry: 1000\ndata: " + first + b"\n\n")
            while not sub.dropped:
                data = await sub.queue.get()
                await resp.write(b"data: " + data + b"\n\n")
        except (ConnectionError, RuntimeError):
            pass  # the client went away, or was dropped for falling behind
        finally:
            self.live.unsubscribe(sub)
            if task is not None:
                self._streams.discard(task)
        return resp
