"""OAuth2 under attack: every byte from the token and device endpoints and
from any local process that connects to `popsift authorize`'s loopback
listener is hostile.  The listener must still take the real browser's
redirect within its deadline; hostile replies must not reach the terminal,
the token file or a login unescaped."""

import socket
import threading
import time

import pytest

from oauthd import OAuthServer
from test_oauth import oconfig, play_browser, start_authorize


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
        for req in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 4,
                    b"GET /?" + b"a" * 200000 + b" HTTP/1.1\r\n\r\n",
                    b"GET /?state=x HTTP/1.1\r\n" + b"X: " + b"b" * 100000 + b"\r\n\r\n",
                    b"GET /favicon.ico HTTP/1.1\r\n\r\n",
                    b"GET /?code=%1b%5b2J&state=%00 HTTP/1.1\r\n\r\n",
                    b"POST /?code=a HTTP/1.1\r\n\r\n", b"\r\n\r\n"):
            s = connect(port)
            try:
                s.sendall(req)
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
