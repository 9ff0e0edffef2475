"""A scripted OAuth2 authorization server for popsift's tests (stdlib only).

    srv = OAuthServer(client_id="popsift-test", users=("alice",)).start()
    srv.url("/authorize"), srv.url("/token"), srv.url("/device"), srv.url("/introspect")

Endpoints, on 127.0.0.1 and a free port:
  GET  /authorize   authorization code flow: checks client_id, a loopback
                    redirect_uri, code_challenge_method=S256, a 43-character
                    challenge and a state; redirects (302) to redirect_uri with
                    code and state.  The test plays the browser.
  POST /token       grant_type authorization_code (code_verifier checked
                    against the challenge, redirect_uri and client_id too),
                    refresh_token (invalid_grant once srv.revoke() was called
                    or for an unknown token), device_code (authorization_pending,
                    then slow_down, then tokens: srv.device_script).
  POST /device      RFC 8628 device authorization: device_code, user_code,
                    verification_uri, interval (srv.device_interval).
  POST /introspect  for Dovecot's oauth2 passdb: token=... -> {"active": true,
                    "username": ...} for a live access token, else active false.

Knobs: access_ttl (expires_in of access tokens), client_secret (checked when
set), srv.expire_access() makes every access token issued so far dead for
introspection (popsift still believes it fresh), srv.revoke() kills the
refresh tokens.  Counters: srv.calls[grant_type], srv.polls (times of the
device_code polls), srv.errors (what the server refused and why).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def s256(verifier: str) -> str:
    d = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()


class OAuthServer:
    def __init__(self, client_id: str = "popsift-test", client_secret: str | None = None,
                 username: str = "alice", access_ttl: int = 3600, device_interval: int = 1,
                 device_script: tuple = ("authorization_pending", "slow_down")):
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.access_ttl = access_ttl
        self.device_interval = device_interval
        self.device_script = list(device_script)
        self.lock = threading.Lock()
        self.codes: dict[str, dict] = {}
        self.access: dict[str, float] = {}      # token -> expiry (time.time())
        self.refresh: set[str] = set()
        self.devices: dict[str, int] = {}       # device_code -> polls so far
        self.calls: dict[str, int] = {}
        self.polls: list[float] = []
        self.errors: list[str] = []
        self.introspected: list[str] = []
        self.scopes: list[str] = []
        self.httpd: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------

    def start(self) -> "OAuthServer":
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv._get(self)

            def do_POST(self):
                srv._post(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- switches --------------------------------------------------------

    def expire_access(self) -> None:
        with self.lock:
            for t in self.access:
                self.access[t] = 0

    def revoke(self) -> None:
        with self.lock:
            self.refresh.clear()

    def live_tokens(self) -> list[str]:
        now = time.time()
        with self.lock:
            return [t for t, exp in self.access.items() if exp > now]

    def all_secrets(self) -> list[str]:
        with self.lock:
            return list(self.access) + list(self.refresh)

    # -- HTTP ------------------------------------------------------------

    @staticmethod
    def _reply(h, status: int, body: dict | None = None, headers: dict | None = None):
        data = json.dumps(body).encode() if body is not None else b""
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if body is not None:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _refuse(self, h, status: int, error: str, why: str):
        self.errors.append(f"{error}: {why}")
        self._reply(h, status, {"error": error, "error_description": why})

    def _get(self, h):
        u = urllib.parse.urlsplit(h.path)
        if u.path != "/authorize":
            return self._reply(h, 404, {"error": "not_found"})
        q = dict(urllib.parse.parse_qsl(u.query))
        why = self._check_authorize(q)
        if why:
            return self._refuse(h, 400, "invalid_request", why)
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = {"redirect_uri": q["redirect_uri"],
                                "challenge": q["code_challenge"], "client_id": q["client_id"]}
            self.scopes.append(q.get("scope", ""))
        loc = q["redirect_uri"] + "?" + urllib.parse.urlencode(
            {"code": code, "state": q["state"]})
        self._reply(h, 302, None, {"Location": loc})

    def _check_authorize(self, q: dict) -> str | None:
        if q.get("response_type") != "code":
            return "response_type must be code"
        if q.get("client_id") != self.client_id:
            return f"unknown client_id {q.get('client_id')!r}"
        if not q.get("redirect_uri", "").startswith("http://127.0.0.1:"):
            return f"redirect_uri {q.get('redirect_uri')!r} is not a loopback address"
        if q.get("code_challenge_method") != "S256":
            return "code_challenge_method must be S256"
        if len(q.get("code_challenge", "")) != 43:
            return "code_challenge must be 43 characters"
        if not q.get("state"):
            return "no state"
        return None

    def _post(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(h.rfile.read(n).decode()))
        path = urllib.parse.urlsplit(h.path).path
        if path == "/introspect":
            return self._introspect(h, form)
        if form.get("client_id") != self.client_id:
            return self._refuse(h, 401, "invalid_client", "unknown client_id")
        if self.client_secret is not None and form.get("client_secret") != self.client_secret:
            return self._refuse(h, 401, "invalid_client", "wrong client_secret")
        if path == "/device":
            return self._device(h, form)
        if path == "/token":
            return self._token(h, form)
        self._reply(h, 404, {"error": "not_found"})

    def _introspect(self, h, form):
        tok = form.get("token", "")
        with self.lock:
            self.introspected.append(tok)
            live = self.access.get(tok, 0) > time.time()
        self._reply(h, 200, {"active": True, "username": self.username} if live
                    else {"active": False})

    def _device(self, h, form):
        dc = secrets.token_urlsafe(24)
        with self.lock:
            self.devices[dc] = 0
            self.scopes.append(form.get("scope", ""))
        self._reply(h, 200, {"device_code": dc, "user_code": "WDJB-MJHT",
                             "verification_uri": self.url("/activate"),
                             "expires_in": 600, "interval": self.device_interval})

    def _issue(self, h, with_refresh: bool = True):
        at = "at-" + secrets.token_urlsafe(24)
        body = {"access_token": at, "token_type": "Bearer", "expires_in": self.access_ttl}
        with self.lock:
            self.access[at] = time.time() + self.access_ttl
            if with_refresh:
                rt = "rt-" + secrets.token_urlsafe(24)
                self.refresh.add(rt)
                body["refresh_token"] = rt
        self._reply(h, 200, body)

    def _token(self, h, form):
        grant = form.get("grant_type", "")
        with self.lock:
            self.calls[grant] = self.calls.get(grant, 0) + 1
        if grant == "authorization_code":
            return self._code_grant(h, form)
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh:
                return self._refuse(h, 400, "invalid_grant", "refresh token revoked")
            return self._issue(h, with_refresh=False)
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_grant(h, form)
        self._refuse(h, 400, "unsupported_grant_type", grant)

    def _code_grant(self, h, form):
        with self.lock:
            c = self.codes.pop(form.get("code", ""), None)
        if c is None:
            return self._refuse(h, 400, "invalid_grant", "unknown or used code")
        if form.get("redirect_uri") != c["redirect_uri"]:
            return self._refuse(h, 400, "invalid_grant", "redirect_uri differs")
        if s256(form.get("code_verifier", "")) != c["challenge"]:
            return self._refuse(h, 400, "invalid_grant", "code_verifier does not match")
        self._issue(h)

    def _device_grant(self, h, form):
        dc = form.get("device_code", "")
        with self.lock:
            if dc not in self.devices:
                step = "expired_token"
            else:
                i = self.devices[dc]
                self.devices[dc] = i + 1
                step = self.device_script[i] if i < len(self.device_script) else None
            self.polls.append(time.monotonic())
        if step:
            return self._reply(h, 400, {"error": step})
        with self.lock:
            del self.devices[dc]
        self._issue(h)
