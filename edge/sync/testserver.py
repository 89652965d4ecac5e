"""A small FHIR R4 receiver for tests and the demo: a test fixture, not a product.

It is the *reference receiver* the sync layer is tested against; production points
at the hospital's FHIR server. It listens on loopback only and implements exactly
what the gateway relies on:

* ``POST {base}/`` transaction Bundles (gzip accepted unless ``--no-gzip``, which
  answers 415 to a compressed body as a server without request compression does),
  each validated with
  ``fhir.resources`` (R4B models), all-or-nothing in one SQLite transaction;
  conditional create (``ifNoneExist``) and conditional update
  (``PUT Type?identifier=...``) on identifiers, 412 on multiple matches;
  ``urn:uuid`` references rewritten to the assigned ids;
* ``GET {base}/Type?identifier=sys|value[&_summary=count]`` and ``GET {base}/Type/id``;
* authentication: none, a static bearer token (``--bearer-token-file``), or SMART
  Backend Services (``--client-id`` + ``--client-public-key``; token endpoint
  ``/auth/token``, discovery at ``{base}/.well-known/smart-configuration``, tokens
  expire after ``--token-ttl`` seconds); TLS and mutual TLS with ``--tls-cert``,
  ``--tls-key``, ``--client-ca``;
* fault injection at run time: ``POST /_admin/faults`` with
  ``{"faults": [{"status": 500, "times": 2}, {"status": 429, "retry_after": 1},
  {"delay_s": 2}, {"drop": "before"}, {"drop": "after"}], "down": false}``;
  ``{"expire_tokens": true}`` revokes every token (the next upload gets 401);
  ``DELETE /_admin/faults`` clears. ``GET /_admin/stats`` and ``/_admin/observations``
  report what was stored (for duplicate and order checks). Admin endpoints need no
  credentials: the server only binds to loopback.

Received resources persist in SQLite (``--db``), so restarts and duplicate checks
are real. Run ``python -m edge.sync.testserver --port 0 --db PATH``: the first line
on stdout is the FHIR base URL.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import secrets
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

BASE = "/fhir"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    rtype      TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    INTEGER NOT NULL,
    ident_sys  TEXT,
    ident_val  TEXT,
    body       TEXT NOT NULL,
    created    REAL NOT NULL,
    updated    REAL NOT NULL,
    UNIQUE (rtype, id)
);
CREATE INDEX IF NOT EXISTS resources_ident ON resources (rtype, ident_sys, ident_val);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class _Reject(Exception):
    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


def outcome(code: str, text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


class Backend:
    """State shared by the handler threads: the store, the faults, the tokens."""

    def __init__(self, db: Path, args: argparse.Namespace) -> None:
        self.db = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        self.lock = threading.Lock()
        self.args = args
        self.faults: list[dict[str, Any]] = []
        self.down = False
        self.tokens: dict[str, float] = {}
        self.jtis: set[str] = set()
        self.bearer = (Path(args.bearer_token_file).read_text().strip()
                       if args.bearer_token_file else None)
        self.public_key = (Path(args.client_public_key).read_text()
                           if args.client_public_key else None)
        self.base_url = ""

    def count(self, name: str, n: int = 1) -> None:
        self.db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                        "value = value + excluded.value", (name, n))

    def next_fault(self) -> dict[str, Any] | None:
        with self.lock:
            if self.down:
                return {"status": 503, "retry_after": None}
            if not self.faults:
                return None
            f = self.faults[0]
            times = int(f.get("times", 1))
            if times > 0:
                f["times"] = times - 1
                if times == 1:
                    self.faults.pop(0)
            self.count("faults_applied")
            return dict(f)

    # -- auth -----------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        mode = self.args.auth
        if mode == "none":
            return True
        if not header or not header.startswith("Bearer "):
            return False
        token = header[7:]
        if mode == "bearer":
            return secrets.compare_digest(token, self.bearer or "")
        with self.lock:
            exp = self.tokens.get(token)
        return exp is not None and exp > time.time()

    def issue_token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        import jwt  # only the SMART mode needs it

        def one(k: str) -> str:
            return form.get(k, [""])[0]
        if one("grant_type") != "client_credentials" or one("client_assertion_type") != (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
            return 400, {"error": "invalid_request"}
        try:
            claims = jwt.decode(one("client_assertion"), self.public_key or "",
                                algorithms=["RS384", "ES384"],
                                audience=f"{self.base_url.rsplit(BASE, 1)[0]}/auth/token",
                                issuer=self.args.client_id,
                                options={"require": ["exp", "jti", "iss", "sub", "aud"]})
        except jwt.PyJWTError as exc:
            return 401, {"error": "invalid_client", "error_description": type(exc).__name__}
        with self.lock:
            if claims["sub"] != claims["iss"] or claims["jti"] in self.jtis or (
                    claims["exp"] - time.time() > 300):
                return 401, {"error": "invalid_client"}
            self.jtis.add(claims["jti"])
            token = secrets.token_urlsafe(24)
            self.tokens[token] = time.time() + self.args.token_ttl
            self.count("tokens_issued")
        return 200, {"access_token": token, "token_type": "bearer",
                     "expires_in": self.args.token_ttl, "scope": one("scope")}

    # -- storage --------------------------------------------------------------------------

    def search(self, rtype: str, ident: str) -> list[tuple[str, int, str]]:
        system, _, value = ident.partition("|")
        rows = self.db.execute(
            "SELECT id, version, body FROM resources WHERE rtype=? AND ident_sys=? AND "
            "ident_val=? ORDER BY seq", (rtype, system, value)).fetchall()
        return [(r[0], int(r[1]), r[2]) for r in rows]

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        from fhir.resources.R4B.bundle import Bundle

        try:
            Bundle.model_validate(bundle)
        except Exception as exc:  # pydantic.ValidationError: say which, not the content
            raise _Reject(400, "invalid", f"Bundle failed validation ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0]})") from exc
        if bundle.get("type") != "transaction":
            raise _Reject(400, "invalid", "only transaction Bundles are accepted")
        entries = bundle.get("entry", [])
        # R4 order: POST before PUT (no DELETE/GET here); answers keep the request order
        order = sorted(range(len(entries)),
                       key=lambda i: {"POST": 0, "PUT": 1}.get(entries[i]["request"]["method"], 9))
        plan: list[tuple[int, str, str, str, int]] = []  # (entry, action, rtype, id, version)
        refs: dict[str, str] = {}
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for i in order:
                    plan.append(self._resolve(i, entries[i], refs))
                now = time.time()
                answers: dict[int, dict[str, Any]] = {}
                for i, action, rtype, rid, version in plan:
                    if action in ("create", "update"):
                        res = _rewrite(dict(entries[i]["resource"]), refs)
                        res["id"] = rid
                        res["meta"] = {**res.get("meta", {}), "versionId": str(version),
                                       "lastUpdated": _iso(now)}
                        ident = (res.get("identifier") or [{}])[0]
                        self.db.execute(
                            "INSERT INTO resources (rtype, id, version, ident_sys, ident_val, "
                            "body, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT(rtype, id) DO UPDATE SET version=excluded.version, "
                            "body=excluded.body, updated=excluded.updated",
                            (rtype, rid, version, ident.get("system"), ident.get("value"),
                             json.dumps(res), now, now))
                    status = {"create": "201 Created"}.get(action, "200 OK")
                    answers[i] = {"response": {"status": status,
                                               "location": f"{rtype}/{rid}/_history/{version}"}}
                    self.count(f"entries_{action}")
                self.count("transactions")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return {"resourceType": "Bundle", "type": "transaction-response",
                "entry": [answers[i] for i in range(len(entries))]}

    def _resolve(self, idx: int, entry: dict[str, Any], refs: dict[str, str]
                 ) -> tuple[int, str, str, str, int]:
        req, res = entry["request"], entry.get("resource") or {}
        rtype = res.get("resourceType", "")
        method, url = req["method"], req["url"]
        if method == "POST":
            if url != rtype:
                raise _Reject(400, "invalid", f"POST url {url!r} does not match {rtype}")
            action, rid, version = "create", uuid.uuid4().hex, 1
            if req.get("ifNoneExist"):
                q = parse_qs(req["ifNoneExist"])
                if list(q) != ["identifier"]:
                    raise _Reject(400, "not-supported", "ifNoneExist supports identifier only")
                found = self.search(rtype, q["identifier"][0])
                if len(found) > 1:
                    raise _Reject(412, "duplicate", "ifNoneExist matched more than one resource")
                if found:
                    action, rid, version = "exists", found[0][0], found[0][1]
        elif method == "PUT":
            path, _, query = url.partition("?")
            if path != rtype:
                path, _, rid = url.partition("/")
                if path != rtype or not rid:
                    raise _Reject(400, "invalid", f"PUT url {url!r} does not match {rtype}")
                row = self.db.execute("SELECT version FROM resources WHERE rtype=? AND id=?",
                                      (rtype, rid)).fetchone()
                action, version = ("update", row[0] + 1) if row else ("create", 1)
            else:
                q = parse_qs(query)
                if list(q) != ["identifier"]:
                    raise _Reject(400, "not-supported", "conditional PUT supports identifier only")
                found = self.search(rtype, q["identifier"][0])
                if len(found) > 1:
                    raise _Reject(412, "duplicate", "conditional update matched more than one")
                if found:
                    action, rid, version = "update", found[0][0], found[0][1] + 1
                else:
                    action, rid, version = "create", uuid.uuid4().hex, 1
        else:
            raise _Reject(400, "not-supported", f"method {method} not supported")
        if entry.get("fullUrl"):
            refs[entry["fullUrl"]] = f"{rtype}/{rid}"
        return (idx, action, rtype, rid, version)


def _rewrite(obj: Any, refs: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        return {k: (refs.get(v, v) if k == "reference" and isinstance(v, str)
                    else _rewrite(v, refs)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rewrite(v, refs) for v in obj]
    return obj


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Handler(BaseHTTPRequestHandler):
    server_version = "vitals-edge-testserver/1"
    protocol_version = "HTTP/1.1"
    backend: Backend

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read stdout
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        return data

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:
        b = self.backend
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        if path == "/_admin/stats":
            with b.lock:
                by_type = dict(b.db.execute("SELECT rtype, COUNT(*) FROM resources GROUP BY rtype"))
                dups = b.db.execute(
                    "SELECT rtype, ident_sys, ident_val, COUNT(*) FROM resources WHERE ident_val "
                    "IS NOT NULL GROUP BY rtype, ident_sys, ident_val HAVING COUNT(*) > 1"
                ).fetchall()
                counters = dict(b.db.execute("SELECT name, value FROM counters"))
            self._send(200, {"resources": by_type, "duplicates": [list(d) for d in dups],
                             "counters": counters, "faults_queued": len(b.faults)})
            return
        if path == "/_admin/observations":
            with b.lock:
                rows = b.db.execute("SELECT seq, version, body FROM resources WHERE "
                                    "rtype='Observation' ORDER BY seq").fetchall()
            out = []
            for seq, version, body in rows:
                res = json.loads(body)
                ext = {e["url"]: next(v for k, v in e.items() if k.startswith("value"))
                       for e in res.get("extension", [])}
                ident = (res.get("identifier") or [{}])[0]
                out.append({"seq": seq, "version": version, "identifier": ident.get("value"),
                            "system": ident.get("system"), "status": res.get("status"),
                            "revision": ext.get("urn:vitals-edge:fhir:event-revision"),
                            "priority": ext.get("urn:vitals-edge:fhir:alarm-priority")})
            self._send(200, out)
            return
        if path == f"{BASE}/metadata":
            self._send(200, {"resourceType": "CapabilityStatement", "status": "active",
                             "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
                             "date": "2026-01-01",
                             "rest": [{"mode": "server", "interaction": [{"code": "transaction"}],
                                       "resource": [{"type": t, "conditionalCreate": True,
                                                     "conditionalUpdate": True,
                                                     "updateCreate": True}
                                                    for t in ("Observation", "Device",
                                                              "RiskAssessment", "Patient")]}]})
            return
        if path == f"{BASE}/.well-known/smart-configuration":
            self._send(200, {"token_endpoint": f"{b.base_url.rsplit(BASE, 1)[0]}/auth/token",
                             "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                             "token_endpoint_auth_signing_alg_values_supported":
                                 ["RS384", "ES384"],
                             "grant_types_supported": ["client_credentials"]})
            return
        if not b.authorized(self.headers.get("Authorization")):
            self._send(401, outcome("login", "authentication required"),
                       {"WWW-Authenticate": "Bearer"})
            return
        parts = path[len(BASE):].strip("/").split("/") if path.startswith(BASE) else []
        if len(parts) == 1 and parts[0]:
            q = parse_qs(url.query)
            with b.lock:
                found = b.search(parts[0], unquote(q.get("identifier", [""])[0]))
            bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                      "total": len(found)}
            if q.get("_summary", [""])[0] != "count":
                bundle["entry"] = [{"resource": json.loads(body)} for _, _, body in found]
            self._send(200, bundle)
            return
        if len(parts) == 2:
            with b.lock:
                row = b.db.execute("SELECT body FROM resources WHERE rtype=? AND id=?",
                                   tuple(parts)).fetchone()
            if row:
                self._send(200, json.loads(row[0]))
            else:
                self._send(404, outcome("not-found", "no such resource"))
            return
        self._send(404, outcome("not-found", "unknown path"))

    def do_DELETE(self) -> None:
        if self.path.rstrip("/") == "/_admin/faults":
            with self.backend.lock:
                self.backend.faults.clear()
                self.backend.down = False
            self._send(200, {"ok": True})
        else:
            self._send(405, outcome("not-supported", "DELETE not supported"))

    def do_POST(self) -> None:
        b = self.backend
        path = urlsplit(self.path).path.rstrip("/")
        try:
            raw = self._body()
        except (OSError, ValueError):
            self._send(400, outcome("invalid", "unreadable body"))
            return
        if path == "/_admin/faults":
            cmd = json.loads(raw or b"{}")
            with b.lock:
                b.faults.extend(cmd.get("faults", []))
                if "down" in cmd:
                    b.down = bool(cmd["down"])
                if cmd.get("expire_tokens"):
                    b.tokens.clear()
            self._send(200, {"ok": True, "queued": len(b.faults), "down": b.down})
            return
        if path == "/auth/token":
            status, body = b.issue_token(parse_qs(raw.decode()))
            self._send(status, body)
            return
        if path != BASE:
            self._send(404, outcome("not-found", "POST transaction Bundles to the base URL"))
            return
        if b.args.no_gzip and self.headers.get("Content-Encoding", "").lower() == "gzip":
            with b.lock:
                b.count("refused_gzip")
            self._send(415, outcome("not-supported", "Content-Encoding gzip not accepted"),
                       {"Accept-Encoding": "identity"})
            return
        fault = b.next_fault()
        if fault:
            if fault.get("delay_s"):
                time.sleep(float(fault["delay_s"]))
            if fault.get("drop") == "before":
                self._drop()
                return
            if fault.get("status"):
                hdr = ({"Retry-After": str(fault["retry_after"])}
                       if fault.get("retry_after") is not None else {})
                self._send(int(fault["status"]), outcome("transient", "injected fault"), hdr)
                return
        if not b.authorized(self.headers.get("Authorization")):
            self._send(401, outcome("login", "authentication required"),
                       {"WWW-Authenticate": "Bearer"})
            return
        try:
            response = b.transaction(json.loads(raw))
        except _Reject as exc:
            with b.lock:
                b.count("rejected")
            self._send(exc.status, outcome(exc.code, exc.text))
            return
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            with b.lock:
                b.count("rejected")
            self._send(400, outcome("invalid", f"malformed request ({type(exc).__name__})"))
            return
        if fault and fault.get("drop") == "after":  # committed, but the client never hears
            self._drop()
            return
        self._send(200, response)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return  # a client that went away (killed, dropped): nothing to report
        super().handle_error(request, client_address)


def serve(args: argparse.Namespace) -> None:
    backend = Backend(Path(args.db), args)
    handler = type("BoundHandler", (Handler,), {"backend": backend})
    server = _Server((args.host, args.port), handler)
    server.daemon_threads = True
    scheme = "http"
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    port = server.server_address[1]
    backend.base_url = f"{scheme}://{args.host}:{port}{BASE}"
    print(backend.base_url, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m edge.sync.testserver",
        description="FHIR R4 test receiver (test fixture; prints its base URL first).")
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1", "localhost"],
                   help="loopback only")
    p.add_argument("--port", type=int, default=0, help="0 = any free port")
    p.add_argument("--db", required=True, help="SQLite file for received resources")
    p.add_argument("--auth", choices=["none", "bearer", "smart"], default="none")
    p.add_argument("--bearer-token-file")
    p.add_argument("--client-id", default="vitals-edge")
    p.add_argument("--client-public-key", help="PEM public key of the SMART client")
    p.add_argument("--token-ttl", type=float, default=300.0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (mTLS)")
    p.add_argument("--no-gzip", action="store_true",
                   help="refuse gzip-compressed requests with 415 (as many FHIR servers do)")
    serve(p.parse_args(argv))


class TestBackend:
    """A running test server: its ``url`` and admin helpers (faults, stats)."""

    __test__ = False  # not a pytest test class

    def __init__(self, url: str, process: subprocess.Popen[str],
                 admin_verify: ssl.SSLContext | bool = True) -> None:
        self.url = url
        self.process = process
        self.root = url.rsplit(BASE, 1)[0]
        self._admin = httpx.Client(base_url=self.root, verify=admin_verify, timeout=30.0)

    def faults(self, *faults: dict[str, Any], down: bool | None = None,
               expire_tokens: bool = False) -> None:
        body: dict[str, Any] = {"faults": list(faults)}
        if down is not None:
            body["down"] = down
        if expire_tokens:
            body["expire_tokens"] = True
        self._admin.post("/_admin/faults", json=body).raise_for_status()

    def clear_faults(self) -> None:
        self._admin.delete("/_admin/faults").raise_for_status()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = self._admin.get("/_admin/stats").json()
        return out

    def observations(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._admin.get("/_admin/observations").json()
        return out

    def close(self) -> None:
        self._admin.close()


@contextlib.contextmanager
def start_test_backend(db: str | Path, *, auth: str = "none", bearer_token_file: str = "",
                       client_id: str = "vitals-edge", client_public_key: str = "",
                       token_ttl: float = 300.0, tls_cert: str = "", tls_key: str = "",
                       client_ca: str = "", admin_verify: ssl.SSLContext | bool = True,
                       port: int = 0, startup_timeout_s: float = 90.0,
                       no_gzip: bool = False) -> Iterator[TestBackend]:
    """Run the test server as a subprocess on 127.0.0.1; stop it on exit."""
    cmd = [sys.executable, "-m", "edge.sync.testserver", "--port", str(port), "--db", str(db),
           "--auth", auth, "--client-id", client_id, "--token-ttl", str(token_ttl)]
    for flag, value in (("--bearer-token-file", bearer_token_file),
                        ("--client-public-key", client_public_key), ("--tls-cert", tls_cert),
                        ("--tls-key", tls_key), ("--client-ca", client_ca)):
        if value:
            cmd += [flag, str(value)]
    if no_gzip:
        cmd.append("--no-gzip")
    with _run_backend(cmd, admin_verify, startup_timeout_s) as backend:
        yield backend


@contextlib.contextmanager
def _run_backend(cmd: list[str], admin_verify: ssl.SSLContext | bool, startup_timeout_s: float,
                 cwd: Path | None = None) -> Iterator[TestBackend]:
    """Start a backend process whose first stdout line is its base URL; stop it on exit."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=cwd)
    backend: TestBackend | None = None
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()  # type: ignore[union-attr]
                                                             ), daemon=True)
        reader.start()
        reader.join(startup_timeout_s)
        if not line or not line[0].startswith(("http://", "https://")):
            raise RuntimeError(f"test backend did not start within {startup_timeout_s:g} s "
                               f"(exit code {proc.poll()})")
        backend = TestBackend(line[0].strip(), proc, admin_verify)
        yield backend
    finally:
        if backend is not None:
            backend.close()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


# -- a FHIR implementation nobody on this project wrote: Medplum's router under Node ------

#: the Node test backend (package.json, package-lock.json, server.mjs) in a source checkout
MEDPLUM_DIR = Path(__file__).resolve().parents[2] / "tests" / "fhir_medplum"
MIN_NODE = 20


def medplum_unavailable(directory: Path = MEDPLUM_DIR) -> str | None:
    """Why the Medplum backend cannot run here (None when it can)."""
    node = shutil.which("node")
    if node is None:
        return "Node.js not found (the Medplum FHIR backend runs under node >= 20)"
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        major = int(out.lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return "node --version failed"
    if major < MIN_NODE:
        return f"Node.js {out} is too old (the Medplum FHIR backend needs >= {MIN_NODE})"
    if not (directory / "server.mjs").is_file():
        return f"{directory}/server.mjs not found (not a source checkout)"
    if not (directory / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return f"Medplum packages not installed: run `npm ci` in {directory}"
    return None


@contextlib.contextmanager
def start_medplum_backend(*, directory: Path = MEDPLUM_DIR, accept_gzip: bool = False,
                          startup_timeout_s: float = 60.0) -> Iterator[TestBackend]:
    """Run Medplum's FHIR router (in-memory) behind tests/fhir_medplum/server.mjs."""
    reason = medplum_unavailable(directory)
    if reason:
        raise RuntimeError(reason)
    cmd = [shutil.which("node") or "node", "--experimental-websocket", "server.mjs",
           "--port", "0"] + (["--accept-gzip"] if accept_gzip else [])
    with _run_backend(cmd, True, startup_timeout_s, cwd=directory) as backend:
        yield backend


@contextlib.contextmanager
def start_backend(kind: str, workdir: str | Path, **kw: Any) -> Iterator[TestBackend]:
    """``"own"`` (this module's server, SQLite in ``workdir``) or ``"medplum"``."""
    if kind == "own":
        with start_test_backend(Path(workdir) / f"backend-{uuid.uuid4().hex[:8]}.sqlite3",
                                **kw) as be:
            yield be
    elif kind == "medplum":
        with start_medplum_backend(**kw) as be:
            yield be
    else:
        raise ValueError(f"unknown test backend {kind!r} (own, medplum)")


if __name__ == "__main__":
    main()
