"""Integration tests for issue 2: errors and exit codes — nothing listening,
a server that never answers (timeout), a server that stalls or misbehaves
mid-session, config errors with file:line, a readable config holding a
password, --json on failure."""

import contextlib
import json
import re
import socket
import threading
import time
import uuid

import pytest

import popsift_test as pt

SUMMARY_RE = re.compile(r"^\S+: \d+ new, \d+ delivered, \d+ kept, \d+ deleted, "
                        r"\d+\.\d MB in \d+\.\d s$")


def mkmsg(tag: str) -> bytes:
    return (f"Return-Path: <s@example.com>\nFrom: s@example.com\nTo: alice@example.org\n"
            f"Subject: {tag}\nMessage-ID: <{tag}.{uuid.uuid4().hex}@popsift.test>\n\n"
            f"body of {tag}\n").encode()


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln and not SUMMARY_RE.match(ln)]


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
    return r


# --------------------------------------------------------------------------
# fake servers on 127.0.0.1

class FakeServer:
    """Accepts connections on 127.0.0.1 and hands each to handler(conn,
    server) in a thread; records what clients sent in .received (bytes).
    Connections stay open until stop()."""

    def __init__(self, handler=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.conns = []
        self.received = bytearray()
        self.stopping = threading.Event()
        self.accepted = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with self.lock:
                self.conns.append(conn)
                self.accepted += 1
            if self.handler:
                threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        with contextlib.suppress(OSError):
            self.handler(conn, self)

    def recv_line(self, conn, buf: bytearray) -> bytes | None:
        conn.settimeout(0.2)
        while b"\n" not in buf:
            if self.stopping.is_set():
                return None
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            if not data:
                return None
            with self.lock:
                self.received += data
            buf += data
        i = buf.index(b"\n") + 1
        line = bytes(buf[:i])
        del buf[:i]
        return line

    def hold(self, conn):
        """Stay silent (but keep reading) until stopped."""
        buf = bytearray()
        while self.recv_line(conn, buf) is not None:
            pass

    def stop(self):
        self.stopping.set()
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.close()
        with contextlib.suppress(OSError):
            self.sock.close()
        self.thread.join(timeout=2)


@pytest.fixture
def fake_server():
    servers = []

    def make(handler=None):
        s = FakeServer(handler)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


def pop3_script(on_uidl=None, on_list=None, on_retr=None):
    """A minimal POP3 server: greeting, CAPA, USER/PASS; then the given
    replies (bytes, or None: go silent) for UIDL, LIST and RETR."""
    def handler(conn, srv):
        conn.sendall(b"+OK fake POP3 ready\r\n")
        buf = bytearray()
        while True:
            line = srv.recv_line(conn, buf)
            if line is None:
                return
            cmd = line.strip().split(b" ")[0].upper()
            if cmd == b"CAPA":
                conn.sendall(b"+OK\r\nUSER\r\nUIDL\r\nTOP\r\nPIPELINING\r\n.\r\n")
            elif cmd in (b"USER", b"PASS", b"NOOP", b"RSET"):
                conn.sendall(b"+OK\r\n")
            elif cmd == b"STAT":
                conn.sendall(b"+OK 1 100\r\n")
            elif cmd in (b"UIDL", b"LIST", b"RETR"):
                reply = {b"UIDL": on_uidl, b"LIST": on_list, b"RETR": on_retr}[cmd]
                if reply is None:
                    srv.hold(conn)
                    return
                conn.sendall(reply)
            elif cmd == b"DELE":
                conn.sendall(b"+OK deleted\r\n")
            elif cmd == b"QUIT":
                conn.sendall(b"+OK bye\r\n")
                return
            else:
                conn.sendall(b"-ERR unknown command\r\n")
    return handler


def fake_config(tmp, port, **keys):
    keys = {"host": "127.0.0.1", "port": port, "user": "alice", "password": "secret",
            "tls": "off", "auth": "user", "keep": "no",
            "deliver": f"mbox {tmp / 'inbox.mbox'}", **keys}
    text = f"defaults\nstate {tmp / 'state.db'}\n\naccount test\n"
    text += "".join(f"{k} {v}\n" for k, v in keys.items() if v is not None)
    return pt.write_config(tmp / "config", text)


# --------------------------------------------------------------------------
# nothing listening, no answer, a stalled session

@pytest.mark.parametrize("tls", ["on", "off", "starttls"])
def test_nothing_listening_is_69(config, run, tmp, dovecot, tls):
    dovecot.add_message("alice", mkmsg("closed"))
    port = pt.free_port()                        # nobody listens here
    r = run("-f", config(tls=tls, port=port), "run", timeout=30)
    assert r.returncode == 69, f"exit {r.returncode}\n{r.stderr}"
    errs = error_lines(r.stderr)
    assert errs, r.stderr
    assert errs[0].startswith("test: "), r.stderr       # the account name first
    assert all(ln.startswith("test: ") for ln in errs), r.stderr
    assert dovecot.count("alice") == 1


@pytest.mark.parametrize("tls", ["on", "off"])
def test_silent_server_times_out_with_75(fake_server, run, tmp, tls):
    srv = fake_server(lambda conn, s: s.hold(conn))  # accepts, never says a word
    cfg = fake_config(tmp, srv.port, tls=tls, timeout=2)
    t0 = time.monotonic()
    r = run("-f", cfg, "run", timeout=30)
    elapsed = time.monotonic() - t0
    assert srv.accepted >= 1
    assert r.returncode == 75, f"exit {r.returncode} after {elapsed:.1f} s\n{r.stderr}"
    assert elapsed < 10, f"took {elapsed:.1f} s with timeout 2"
    errs = error_lines(r.stderr)
    assert errs and errs[0].startswith("test: "), r.stderr
    assert not (tmp / "inbox.mbox").exists() or pt.mbox_messages(tmp / "inbox.mbox") == []


def test_server_stalling_after_login_times_out_with_75(fake_server, run, tmp):
    srv = fake_server(pop3_script(on_uidl=None))
    cfg = fake_config(tmp, srv.port, timeout=2)
    t0 = time.monotonic()
    r = run("-f", cfg, "run", timeout=30)
    elapsed = time.monotonic() - t0
    assert b"UIDL" in srv.received, srv.received
    assert r.returncode == 75, f"exit {r.returncode} after {elapsed:.1f} s\n{r.stderr}"
    assert elapsed < 10, f"took {elapsed:.1f} s with timeout 2"


def test_server_stalling_mid_message_delivers_and_deletes_nothing(fake_server, run, tmp):
    srv = fake_server(pop3_script(
        on_uidl=b"+OK\r\n1 uid-one\r\n.\r\n",
        on_list=b"+OK\r\n1 100\r\n.\r\n",
        on_retr=None))
    # RETR goes silent before any data; and a variant sending half a message:
    cfg = fake_config(tmp, srv.port, timeout=2)
    r = run("-f", cfg, "run", timeout=30)
    assert r.returncode == 75, f"exit {r.returncode}\n{r.stderr}"
    assert b"DELE" not in srv.received
    assert pt.mbox_messages(tmp / "inbox.mbox") == []


def _half_message_handler(conn, srv):
    conn.sendall(b"+OK fake POP3 ready\r\n")
    buf = bytearray()
    while True:
        line = srv.recv_line(conn, buf)
        if line is None:
            return
        cmd = line.strip().split(b" ")[0].upper()
        if cmd == b"CAPA":
            conn.sendall(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n")
        elif cmd in (b"USER", b"PASS"):
            conn.sendall(b"+OK\r\n")
        elif cmd == b"UIDL":
            conn.sendall(b"+OK\r\n1 uid-one\r\n.\r\n")
        elif cmd == b"LIST":
            conn.sendall(b"+OK\r\n1 5000\r\n.\r\n")
        elif cmd == b"RETR":
            conn.sendall(b"+OK 5000 octets\r\nSubject: half\r\nMessage-ID: <half@x>\r\n\r\n"
                         + b"partial body line\r\n" * 50)
            srv.hold(conn)
            return
        elif cmd == b"QUIT":
            conn.sendall(b"+OK\r\n")
            return
        else:
            conn.sendall(b"+OK\r\n")


def test_server_stalling_inside_message_body(fake_server, run, tmp):
    srv = fake_server(_half_message_handler)
    cfg = fake_config(tmp, srv.port, timeout=2)
    t0 = time.monotonic()
    r = run("-f", cfg, "run", timeout=30)
    assert r.returncode == 75, f"exit {r.returncode}\n{r.stderr}"
    assert time.monotonic() - t0 < 10
    assert b"DELE" not in srv.received
    # no half message left in the mbox
    assert pt.mbox_messages(tmp / "inbox.mbox") == []


@pytest.mark.parametrize("uidl_reply", [
    b"+OK\r\nthis is not a uidl listing\r\n.\r\n",
    b"what?\r\n",
    b"+OK\r\n1 " + b"x" * 2_000_000 + b"\r\n.\r\n",          # an endless line
], ids=["garbage-listing", "no-status", "huge-line"])
def test_malformed_reply_is_a_clean_error(fake_server, run, tmp, uidl_reply):
    srv = fake_server(pop3_script(on_uidl=uidl_reply, on_list=b"+OK\r\n1 100\r\n.\r\n",
                                  on_retr=b"+OK\r\nSubject: x\r\n\r\nbody\r\n.\r\n"))
    cfg = fake_config(tmp, srv.port, timeout=5)
    r = run("-f", cfg, "run", timeout=30)
    assert 0 < r.returncode < 128, f"exit {r.returncode}\n{r.stderr[-2000:]}"
    errs = error_lines(r.stderr)
    assert errs and errs[0].startswith("test: "), r.stderr[-2000:]
    assert len(r.stderr) < 10000
    assert b"DELE" not in srv.received


def test_json_on_failure(config, run, tmp, dovecot):
    port = pt.free_port()
    r = run("-f", config(port=port), "run", "--json", timeout=30)
    assert r.returncode == 69, r.stderr
    data = json.loads(r.stdout)
    (a,) = data["accounts"]
    assert a["account"] == "test"
    assert a["delivered"] == 0 and a["deleted"] == 0
    assert a.get("error"), a
    assert data.get("exit", 69) == 69


# --------------------------------------------------------------------------
# config errors

def base_lines(tmp, port=110):
    return ["defaults",
            f"state {tmp / 'state.db'}",
            "",
            "account test",
            "host 127.0.0.1",
            f"port {port}",
            "user alice",
            "password_command /bin/echo secret",
            "tls on",
            "auth any",
            f"deliver mbox {tmp / 'inbox.mbox'}"]


def write_lines(tmp, lines, mode=0o600):
    return pt.write_config(tmp / "config", "\n".join(lines) + "\n", mode)


def assert_config_error(r, cfg, lineno=None):
    assert r.returncode == 78, f"exit {r.returncode}\n{r.stderr}"
    if lineno is None:
        assert re.search(re.escape(str(cfg)) + r":\d+", r.stderr), r.stderr
    else:
        assert f"{cfg}:{lineno}" in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", ["run", "check"])
def test_config_unknown_key(run, tmp, cmd):
    lines = base_lines(tmp)
    lines.insert(6, "bogus_key yes")
    cfg = write_lines(tmp, lines)
    r = run("-f", cfg, cmd)
    assert_config_error(r, cfg, 7)
    assert "bogus_key" in r.stderr


@pytest.mark.parametrize("cmd", ["run", "check"])
def test_config_bad_tls_value(run, tmp, cmd):
    lines = base_lines(tmp)
    i = lines.index("tls on")
    lines[i] = "tls maybe"
    cfg = write_lines(tmp, lines)
    r = run("-f", cfg, cmd)
    assert_config_error(r, cfg, i + 1)
    assert "maybe" in r.stderr or "tls" in r.stderr


@pytest.mark.parametrize("cmd", ["run", "check"])
def test_config_missing_host(run, tmp, cmd):
    lines = [ln for ln in base_lines(tmp) if not ln.startswith("host ")]
    cfg = write_lines(tmp, lines)
    r = run("-f", cfg, cmd)
    assert_config_error(r, cfg)
    assert "host" in r.stderr


def test_config_bad_value_in_defaults(run, tmp):
    lines = base_lines(tmp)
    lines.insert(1, "auth sometimes")
    cfg = write_lines(tmp, lines)
    assert_config_error(run("-f", cfg, "run"), cfg, 2)


def test_config_missing_file_is_78(run, tmp):
    r = run("-f", tmp / "nope", "run")
    assert r.returncode == 78, r.stderr
    assert str(tmp / "nope") in r.stderr


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_readable_config_with_password_refused(dovecot, config, run, tmp, mode):
    dovecot.add_message("alice", mkmsg("perm"))
    cfg = config(mode=mode)
    assert "password secret" in cfg.read_text()
    r = run("-f", cfg, "run")
    assert r.returncode == 78, f"exit {r.returncode}\n{r.stderr}"
    assert "chmod" in r.stderr, r.stderr
    assert str(cfg) in r.stderr
    assert dovecot.count("alice") == 1
    assert not (tmp / "inbox.mbox").exists()


def test_readable_config_with_password_command_is_fine(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("perm-ok"))
    cfg = config(mode=0o644, password=None, password_command="/bin/echo secret")
    ok(run("-f", cfg, "run"))
    assert dovecot.count("alice") == 0
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1


def test_usage_errors_are_64(run, tmp):
    for args in (["frobnicate"], ["run", "--no-such-option"], []):
        r = run("-f", tmp / "config", *args)
        assert r.returncode == 64, (args, r.returncode, r.stderr)
