"""`proxy`, `smtp_proxy`, `imap_proxy` through real proxies from Debian:
Dante (danted, SOCKS5) and tinyproxy (HTTP CONNECT), each started on a
free loopback port with its own config file, in the foreground, no system
service.

What must hold: POP3 (TLS verified end to end), SMTP forwarding and IMAP
delivery go through the proxy (its own log shows the connection); a proxy
that is down is a connect failure (exit 69 or 75, a clear error naming
the proxy) and the mail stays on the server; a proxy does not make a
clear-text password to a non-loopback server acceptable; a bad proxy URL
is a config error (78).

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_proxy.py
"""

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import popsift_test as pt  # noqa: E402
from imapd import DovecotImap  # noqa: E402
from smtpd import Recorder  # noqa: E402

SAFETY = 60


def mkmsg(tag: str) -> bytes:
    return (f"From: Sender <sender@example.com>\nTo: alice@example.org\nSubject: {tag}\n"
            f"Message-ID: <{tag}.{uuid.uuid4().hex}@proxy.test>\n\nHello.\n").encode()


def wait_port(port: int, proc: subprocess.Popen, what: str):
    end = time.monotonic() + SAFETY
    while time.monotonic() < end:
        if pt._port_open(port):
            return
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {port}")


class Proxy:
    def __init__(self, kind: str, tmp: Path, connect_ports=()):
        self.kind, self.port = kind, pt.free_port()
        self.dir = tmp / kind
        self.dir.mkdir()
        self.log = self.dir / "log"
        self.conf = self.dir / "conf"
        if kind == "socks":
            exe = shutil.which("danted") or "/usr/sbin/danted"
            self.conf.write_text(f"""logoutput: {self.log}
internal: 127.0.0.1 port = {self.port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
  from: 127.0.0.1/32 to: 0.0.0.0/0
  log: connect disconnect
}}
socks pass {{
  from: 127.0.0.1/32 to: 127.0.0.0/8
  command: connect
  log: connect disconnect
}}
""")
            cmd = [exe, "-f", str(self.conf), "-N", "1", "-p", str(self.dir / "pid")]
            self.url = f"socks5h://127.0.0.1:{self.port}"
        else:
            exe = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
            ports = "".join(f"ConnectPort {p}\n" for p in connect_ports)
            self.conf.write_text(f"""Port {self.port}
Listen 127.0.0.1
Timeout 60
LogFile "{self.log}"
LogLevel Connect
MaxClients 10
Allow 127.0.0.1
{ports}""")
            self.log.touch()
            os.chmod(self.dir, 0o777)
            os.chmod(self.log, 0o666)
            cmd = [exe, "-d", "-c", str(self.conf)]
            self.url = f"http://127.0.0.1:{self.port}"
        if not os.access(exe, os.X_OK):
            pytest.skip(f"{exe} not installed (tests/deps.sh installs it)")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port, self.proc, kind)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def saw(self, port: int) -> bool:
        t = self.text()
        if self.kind == "socks":
            return f"127.0.0.1.{port}" in t
        return f"CONNECT 127.0.0.1:{port}" in t or f"127.0.0.1:{port}" in t

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=SAFETY)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


@pytest.fixture
def proxies(request, tmp):
    made = []

    def make(kind, connect_ports=()):
        p = Proxy(kind, tmp, connect_ports)
        made.append(p)
        return p
    yield make
    for p in made:
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            print(f"--- {p.kind} log\n{p.text()[-3000:]}")
        p.stop()


@pytest.mark.parametrize("kind", ["socks", "http"])
def test_pop3_through_a_proxy(dovecot, config, run, tmp, proxies, kind):
    px = proxies(kind, [dovecot.port_ssl])
    dovecot.add_messages("alice", [mkmsg("a"), mkmsg("b")])
    cfg = config(proxy=px.url)   # POP3S with the CA: TLS checked end to end
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 2 and dovecot.count("alice") == 0
    assert px.saw(dovecot.port_ssl), px.text()


@pytest.mark.parametrize("kind", ["socks", "http"])
def test_smtp_and_imap_through_a_proxy(dovecot, run, tmp, proxies, kind):
    with Recorder() as srv:
        dc = DovecotImap(users={"alice": "secret", "bob": "secret"})
        try:
            px = proxies(kind, [dovecot.port_ssl, srv.port, dc.imap_port])
            dovecot.add_messages("alice", [mkmsg("fwd"), mkmsg("imap")])
            rules = tmp / "rules"
            rules.write_text('match header "Subject" =~ /^imap$/  imap INBOX\n')
            os.chmod(rules, 0o600)
            cfg = pt.write_config(tmp / "config", pt.account_config(
                dovecot, "alice", state=tmp / "state.db", proxy=px.url, rules=rules,
                deliver="forward bob@example.org", smtp_host="127.0.0.1",
                smtp_port=srv.port, imap_host="127.0.0.1", imap_port=dc.imap_port,
                imap_tls="off", imap_user="bob", imap_password="secret"))
            r = run("-f", cfg, "run")
            assert r.returncode == 0, r.stderr
            assert len(srv.messages) == 1 and dc.imap_count("bob") == 1
            for port in (dovecot.port_ssl, srv.port, dc.imap_port):
                assert px.saw(port), (port, px.text())
        finally:
            dc.stop()


def test_side_proxy_none_goes_direct(dovecot, tmp, run, proxies):
    px = proxies("socks")
    with Recorder() as srv:
        dovecot.add_message("alice", mkmsg("fwd"))
        cfg = pt.write_config(tmp / "config", pt.account_config(
            dovecot, "alice", state=tmp / "state.db", proxy=px.url, smtp_proxy="none",
            deliver="forward bob@example.org", smtp_host="127.0.0.1", smtp_port=srv.port))
        r = run("-f", cfg, "run")
        assert r.returncode == 0, r.stderr
        assert len(srv.messages) == 1
        assert px.saw(dovecot.port_ssl) and not px.saw(srv.port), px.text()


@pytest.mark.parametrize("scheme", ["socks5h", "http"])
def test_proxy_down_is_a_connect_failure(dovecot, config, run, tmp, scheme):
    dovecot.add_message("alice", mkmsg("a"))
    cfg = config(proxy=f"{scheme}://127.0.0.1:{pt.free_port()}")
    r = run("-f", cfg, "run")
    assert r.returncode in (69, 75), r.stderr
    assert "proxy" in r.stderr.lower(), r.stderr
    assert dovecot.count("alice") == 1
    assert not (tmp / "inbox.mbox").exists() or pt.mbox_messages(tmp / "inbox.mbox") == []


def test_proxy_keeps_the_clear_text_rule(dovecot, tmp, run, proxies):
    px = proxies("socks")
    dovecot.add_message("alice", mkmsg("a"))
    # the proxy is on loopback, the SMTP server is not: the password would
    # cross the network in clear text from the proxy on
    cfg = pt.write_config(tmp / "config", pt.account_config(
        dovecot, "alice", state=tmp / "state.db", proxy=px.url,
        deliver="forward bob@example.org", smtp_host="smtp.example.net", smtp_port=25,
        smtp_user="alice", smtp_password="secret"))
    r = run("-f", cfg, "run")
    assert r.returncode == 78, r.stderr
    assert "clear text" in r.stderr
    assert dovecot.count("alice") == 1


def test_bad_proxy_url_is_a_config_error(dovecot, config, run):
    for bad in ("ftp://127.0.0.1:1", "127.0.0.1:1080", "socks5h://"):
        r = run("-f", config(proxy=bad), "check")
        assert r.returncode == 78, (bad, r.stderr)
        assert "proxy" in r.stderr and "socks5h://" in r.stderr


def test_smtp_proxy_down_defers_the_forward(dovecot, tmp, run):
    with Recorder() as srv:
        dovecot.add_message("alice", mkmsg("fwd"))
        cfg = pt.write_config(tmp / "config", pt.account_config(
            dovecot, "alice", state=tmp / "state.db",
            smtp_proxy=f"socks5h://127.0.0.1:{pt.free_port()}",
            deliver="forward bob@example.org", smtp_host="127.0.0.1", smtp_port=srv.port))
        r = run("-f", cfg, "run")
        assert r.returncode == 75, r.stderr
        assert "via proxy socks5h://127.0.0.1:" in r.stderr, r.stderr
        assert srv.messages == [] and dovecot.count("alice") == 1


@pytest.mark.parametrize("kind", ["socks", "http"])
def test_a_remembered_server_is_still_reached_through_the_proxy(dovecot, config, run, tmp,
                                                                 proxies, kind):
    """The second session knows the server's capabilities, which lets popsift
    skip CAPA and log in itself (the short way in, fetch-session.c); with a
    proxy it must still go through the proxy, never around it: with the
    proxy gone the run fails and the new message stays."""
    px = proxies(kind, [dovecot.port_ssl])
    dovecot.add_messages("alice", [mkmsg("a")])
    cfg = config(proxy=px.url, auth="user")   # auth user: the short way's case
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    px.stop()
    dovecot.add_messages("alice", [mkmsg("b")])
    r = run("-f", cfg, "run")
    assert r.returncode in (69, 75), r.stderr
    assert "proxy" in r.stderr, r.stderr
    assert dovecot.count("alice") == 1
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1
