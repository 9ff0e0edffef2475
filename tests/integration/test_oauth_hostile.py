"""OAuth2 under attack: every byte from the token and device endpoints and
from any local process that connects to `popsift authorize`'s loopback
listener is hostile.  The listener must still take the real browser's
redirect within its deadline; hostile replies must not reach the terminal,
the token file or a login unescaped."""

import json
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from oauthd import OAuthServer
from test_oauth import authorize_pkce, mkmsg, oconfig, play_browser, start_authorize


@pytest.fixture
def oauthd():
    srv = OAuthServer().start()
    yield srv
    srv.stop()


def begin_authorize(popsift, config, oauthd, dovecot, tmp):
    """authorize started, its URL and loopback port read from its stdout."""
    cfg = oconfig(config, oauthd, dovecot, tmp)
    p = start_authorize(popsift, cfg)
    url = next(line.strip() for line in p.stdout if "code_challenge=" in line)
    redirect = next(line.split()[-1] for line in p.stdout if "Waiting up to" in line)
    port = int(redirect.rsplit(":", 1)[1].strip("/"))
    return p, url, port


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    return s


def listeners(port):
    """Local addresses (hex, as /proc/net shows them) listening on port."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                local, st = line.split()[1], line.split()[3]
                addr, p = local.split(":")
                if int(p, 16) == port and st == "0A":
                    found.append(addr)
    return found


def test_slow_and_idle_clients_do_not_block_the_browser(popsift, config, oauthd, dovecot, tmp):
    """Another local process holds connections open (idle, or sending a
    byte now and then, never ending its headers): the browser's redirect
    is still taken at once, well within the deadline."""
    p, url, port = begin_authorize(popsift, config, oauthd, dovecot, tmp)
    stop = threading.Event()
    idle = []
    for _ in range(20):
        try:
            idle.append(connect(port))
        except OSError:
            pass            # a full backlog refuses: that is the attack

    def trickle():
        s = connect(port)
        s.sendall(b"GET /?state=x")
        while not stop.wait(0.5):
            try:
                s.sendall(b"A")
            except OSError:
                break
        s.close()

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        time.sleep(1)   # not a synchronisation: gives the trickler a head start
        t0 = time.monotonic()
        page = play_browser(url)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, out + err
        assert "authorized" in page
        assert time.monotonic() - t0 < 20
    finally:
        stop.set()
        t.join()
        for s in idle:
            s.close()
        if p.poll() is None:
            p.kill()
            p.wait()


def test_garbage_and_huge_requests_are_ignored(popsift, config, oauthd, dovecot, tmp):
    """Non-HTTP bytes, a huge request line, huge headers, another path,
    a client that resets at once: answered or dropped, the wait goes on."""
    p, url, port = begin_authorize(popsift, config, oauthd, dovecot, tmp)
    try:
        assert listeners(port) == ["0100007F"]      # 127.0.0.1 only, no IPv6
        for req in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 4,
                    b"GET /?" + b"a" * 200000 + b" HTTP/1.1\r\n\r\n",
                    b"GET /?state=x HTTP/1.1\r\n" + b"X: " + b"b" * 100000 + b"\r\n\r\n",
                    b"GET /favicon.ico HTTP/1.1\r\n\r\n",
                    b"GET /?code=%1b%5b2J&state=%00 HTTP/1.1\r\n\r\n",
                    b"POST /?code=a HTTP/1.1\r\n\r\n", b"\r\n\r\n"):
            s = connect(port)
            try:
                s.sendall(req)
                s.shutdown(socket.SHUT_WR)
                s.recv(4096)
            except OSError:
                pass            # popsift may close on us before it all went
            s.close()
        assert p.poll() is None, p.communicate()
        page = play_browser(url)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, out + err
        assert "authorized" in page
        assert "\x1b" not in out + err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


class Hostile:
    """An HTTP server on 127.0.0.1 that answers every request to a path
    with what the test scripted: {path: (status, headers, body bytes)}."""

    def __init__(self, script):
        self.script = script
        self.requests = []
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                srv.requests.append((self.path, self.rfile.read(n).decode()))
                status, headers, body = srv.script[self.path]
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hostile():
    made = []

    def make(script):
        made.append(Hostile(script))
        return made[-1]
    yield make
    for h in made:
        h.stop()


JSON = {"Content-Type": "application/json"}
EVIL = "\x1b]8;;http://evil/\x07click\x1b]8;;\x07\x1b[2J\r\nfetch: all mail deleted"


def expired_tokens(tmp, refresh="rt-secret-refresh"):
    d = tmp / "oauth"
    d.mkdir(mode=0o700, exist_ok=True)
    f = d / "test.pop3"
    f.write_text(f"access_token at-old\nexpires_at 1\nrefresh_token {refresh}\n")
    f.chmod(0o600)
    return f


def run_refresh(run, config, dovecot, tmp, url):
    cfg = config(password=None, auth="xoauth2", oauth_client_id="popsift-test",
                 oauth_token_url=url)
    expired_tokens(tmp)
    return run("-f", cfg, "-vv", "run", timeout=120)


@pytest.mark.parametrize("reply,code", [
    ((400, JSON, json.dumps({"error": "invalid_request" + EVIL,
                             "error_description": EVIL}).encode()), 77),
    ((400, JSON, b'{"error": "invalid_request", "error_description": "refresh token '
                 b'rt-secret-refresh is malformed"}'), 77),
    ((503, JSON, b'{"error": "temporarily_unavailable"}'), 75),
    ((500, JSON, b'{"error": "server_error"}'), 75),
    ((502, JSON, b'{"error": "bad_gateway"}'), 75),
    ((400, JSON, b'{"error": "server_error"}'), 75),
    ((200, JSON, json.dumps({"access_token": "at" + EVIL, "expires_in": 3600}).encode()), 75),
    ((200, JSON, b'{"access_token": "", "refresh_token": "rt-new"}'), 75),
    ((200, {}, b"<html>" + EVIL.encode() + b"</html>"), 75),
    ((200, JSON, b'{"access_token": "' + b"a" * (1 << 20) + b'"}'), 75),
    ((302, {"Location": "REDIRECT"}, b""), 75),
], ids=["error", "echo", "503", "500", "502", "server_error", "control-chars", "empty", "not-json",
        "huge", "redirect"])
def test_hostile_token_endpoint(run, config, dovecot, tmp, oauthd, hostile, reply, code):
    """A refresh answered with hostile bytes: the run fails, nothing of it
    reaches the terminal raw, a redirect is not followed, and the token
    file keeps its refresh token.  Only an OAuth2 error the user must act
    on exits 77 (which pauses a daemon's account); a provider's outage is
    temporary (75)."""
    status, headers, body = reply
    if "Location" in headers:
        headers = {"Location": oauthd.url("/token")}
    h = hostile({"/token": (status, headers, body)})
    r = run_refresh(run, config, dovecot, tmp, h.url("/token"))
    assert r.returncode == code, r.stderr
    assert "\x1b" not in r.stdout + r.stderr and "\r\nfetch" not in r.stderr, r.stderr
    assert "rt-secret-refresh" not in r.stdout + r.stderr
    assert "\ntest: oauth: POST http://127.0.0.1:" in r.stderr   # lines name the account
    assert oauthd.calls == {}, "a redirect was followed"
    assert len(h.requests) == 1
    assert "refresh_token rt-secret-refresh\n" in (tmp / "oauth" / "test.pop3").read_text()


def test_hostile_device_endpoint(popsift, config, dovecot, tmp, hostile):
    """What the device endpoint asks the user to open and enter goes to
    the terminal escaped: no escape sequence of the server's reaches it."""
    h = hostile({"/device": (200, JSON, json.dumps({
        "device_code": "dc", "user_code": "CODE" + EVIL, "verification_uri": "https://x/" + EVIL,
        "expires_in": 1, "interval": 5}).encode())})
    cfg = config(password=None, auth="xoauth2", oauth_client_id="popsift-test",
                 oauth_token_url=h.url("/token"), oauth_device_url=h.url("/device"))
    r = subprocess.run([str(popsift), "-f", str(cfg), "authorize", "test"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "enter the code" in r.stdout
    assert "\x1b" not in r.stdout + r.stderr and "\r" not in r.stdout, repr(r.stdout)


def test_sides_with_one_client_share_rotating_tokens(popsift, run, config, make_dovecot, tmp):
    """POP3 and SMTP with the same client get one consent; with a provider
    that rotates refresh tokens, the refresh of one side must not leave
    the other with a dead refresh token (77, "run popsift authorize")."""
    from smtpd import Recorder
    srv = OAuthServer(rotate=True).start()
    dc = make_dovecot(users={"alice": "secret"}, oauth2_introspect=srv.url("/introspect"))
    rec = Recorder(users={}, tokens=lambda user, tok: tok in srv.live_tokens())
    rec.start()
    try:
        cfg = oconfig(config, srv, dc, tmp, smtp_host="127.0.0.1", smtp_port=rec.port,
                      received_header="no", deliver="forward bob@example.org",
                      smtp_user="fwd@example.org", smtp_auth="xoauth2",
                      smtp_oauth_client_id=srv.client_id, smtp_oauth_token_url=srv.url("/token"),
                      smtp_oauth_auth_url=srv.url("/authorize"))
        rc, out, err, _ = authorize_pkce(popsift, cfg)
        assert rc == 0, out + err
        assert srv.calls == {"authorization_code": 1}
        srv.expire_access()
        dc.add_message("alice", mkmsg("rot1"))
        r = run("-f", cfg, "run")
        assert r.returncode == 0, r.stderr
        assert len(rec.messages) == 1
        srv.expire_access()
        dc.add_message("alice", mkmsg("rot2"))
        r = run("-f", cfg, "run")
        assert r.returncode == 0, r.stderr
        assert len(rec.messages) == 2
    finally:
        rec.stop()
        srv.stop()


@pytest.mark.parametrize("interval,expires", [(10 ** 9, 10 ** 10), (1, 10 ** 10), (1, -5)],
                         ids=["huge-interval", "never-expires", "negative-expiry"])
def test_device_flow_has_a_deadline(popsift, config, dovecot, tmp, hostile, interval, expires):
    """A device endpoint that asks for a wait of 30 years, or a token
    endpoint that says authorization_pending for ever: authorize still
    gives up at its own deadline."""
    h = hostile({"/device": (200, JSON, json.dumps({
        "device_code": "dc", "user_code": "C", "verification_uri": "https://x/",
        "expires_in": expires, "interval": interval}).encode()),
        "/token": (400, JSON, b'{"error": "authorization_pending"}')})
    cfg = config(password=None, auth="xoauth2", oauth_client_id="popsift-test",
                 oauth_token_url=h.url("/token"), oauth_device_url=h.url("/device"))
    env = dict(os.environ, POPSIFT_AUTHORIZE_TIMEOUT="4")
    t0 = time.monotonic()
    try:
        r = subprocess.run([str(popsift), "-f", str(cfg), "authorize", "test"],
                           capture_output=True, text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError("authorize waited past its deadline") from None
    assert r.returncode != 0 and "not entered within 4 s" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 30
