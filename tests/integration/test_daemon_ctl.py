"""Integration tests for issue 16: `popsift run` while the daemon runs asks
it over the control socket (<state>.ctl) to poll now, and prints the
results of those polls and their exit code as if it had run them; and
adaptive intervals (max_interval) shown by `popsift status`.

Real Dovecot.  Deterministic on a busy machine: every wait polls for a
condition with a generous deadline (SAFETY); "the daemon did it" is proved
against a long interval (60 s): a poll within SAFETY of the first can only
be the one `run` asked for.

Run:  /usr/bin/python3 -m pytest -q tests/integration/test_daemon_ctl.py
"""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import popsift_test as pt
from test_daemon import (POLL_RE, SAFETY, acct, daemon, make_config, message_ids,  # noqa: F401
                         mkmsg, next_poll_in, throttle)

LONG = 120   # s: a `run` through the daemon, on a busy machine


@pytest.fixture
def dovecot2(make_dovecot):
    return make_dovecot(users={"alice": "secret", "bob": "secret"})


def popen_run(cfg, *args):
    return subprocess.Popen([str(pt.popsift_path()), "-f", str(cfg), "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def settled(d, cfg, names):
    """Every account polled once and waiting ~60 s for the next."""
    for n in names:
        d.wait_for(rf"^{n}: ")
        d.wait_until(lambda: (next_poll_in(cfg, n) or 0) > 40, what=f"{n} waiting ~60 s")


def two_accounts(dc, tmp, **keys):
    return make_config(tmp / "config", {"state": tmp / "state.db", **keys},
                       acct(dc, "alice", "a", interval=60, deliver=f"mbox {tmp}/a.mbox"),
                       acct(dc, "bob", "b", interval=60, auth="plain", password="wrong",
                            deliver=f"mbox {tmp}/b.mbox"))


def test_run_asks_the_daemon_and_prints_its_polls(dovecot2, daemon, run, tmp):
    cfg = two_accounts(dovecot2, tmp)
    d = daemon(cfg)
    settled(d, cfg, ["a", "b"])
    assert (tmp / "state.db.ctl").is_socket()
    assert (tmp / "state.db.ctl").stat().st_mode & 0o777 == 0o600
    msg = mkmsg("via-daemon")
    dovecot2.add_message("alice", msg)

    # text: both accounts, the refused login's 77 is the worst code
    t = time.monotonic()
    r = run("-f", cfg, "run", timeout=LONG)
    assert r.returncode == 77, (r.returncode, r.stderr)
    assert re.search(r"^a: 1 new, 1 delivered, 0 kept, 1 deleted", r.stderr, re.M), r.stderr
    assert re.search(r"^b: .*(refused|auth|login)", r.stderr, re.M | re.I), r.stderr
    assert r.stdout == ""
    assert time.monotonic() - t < LONG
    # the poll really happened, in the daemon, once
    d.wait_for(POLL_RE.format(name="a"), n=2)
    assert message_ids(tmp / "a.mbox") == [pt.header_values(msg, "Message-ID")[0]]
    assert dovecot2.count("alice") == 0
    assert "run asked over" in d.text()

    # --json, one account: run's own JSON, its exit code
    dovecot2.add_message("alice", mkmsg("via-daemon-2"))
    r = run("-f", cfg, "run", "--json", "a", timeout=LONG)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["exit"] == 0 and [x["account"] for x in out["accounts"]] == ["a"]
    assert out["accounts"][0]["new"] == 1 and out["accounts"][0]["delivered"] == 1
    assert len(message_ids(tmp / "a.mbox")) == 2
    d.wait_for(POLL_RE.format(name="a"), n=3)

    # --json with the refused login alone: 77 in the account and overall
    r = run("-f", cfg, "run", "--json", "b", timeout=LONG)
    assert r.returncode == 77, r.stderr
    out = json.loads(r.stdout)
    assert out["exit"] == 77 and out["accounts"][0]["exit"] == 77
    assert out["accounts"][0]["error"]

    # --dry-run does not go through the daemon: refused, clearly, at once
    r = run("-f", cfg, "run", "--dry-run", "a", timeout=SAFETY)
    assert r.returncode == 75 and "--dry-run" in r.stderr, r.stderr
    rc, _ = d.stop()
    assert rc == 0
    assert not (tmp / "state.db.ctl").exists()


def test_unknown_account(dovecot2, daemon, run, tmp):
    cfg = two_accounts(dovecot2, tmp)
    d = daemon(cfg)
    settled(d, cfg, ["a"])
    # unknown to run's own config: 64 as always
    r = run("-f", cfg, "run", "nosuch", timeout=SAFETY)
    assert r.returncode == 64 and "nosuch" in r.stderr, r.stderr
    # known to run's config (edited) but not to the daemon's (not reloaded)
    text = cfg.read_text() + acct(dovecot2, "alice", "c", interval=60,
                                  deliver=f"mbox {tmp}/c.mbox")
    cfg2 = pt.write_config(tmp / "config2", text)
    r = run("-f", cfg2, "run", "c", timeout=SAFETY)
    assert r.returncode == 64, (r.returncode, r.stderr)
    assert re.search(r'no account "c" in the daemon.s config', r.stderr), r.stderr
    assert d.alive()
    rc, _ = d.stop()
    assert rc == 0


def test_daemon_stopping_mid_request(dovecot, daemon, tmp, throttle):
    """The daemon stops while `run` waits for a slow poll: run says so and
    exits 75, at once rather than after its deadline."""
    mbox = tmp / "inbox.mbox"
    proxy = throttle(dovecot.port_ssl, 300_000)
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      acct(dovecot, "alice", "test", port=proxy.port, interval=60,
                           deliver=f"mbox {mbox}"))
    d = daemon(cfg)
    settled(d, cfg, ["test"])
    dovecot.add_messages("alice", [mkmsg(f"slow{i}", size=100_000) for i in range(40)])
    p = popen_run(cfg)
    d.wait_until(lambda: mbox.exists() and mbox.stat().st_size > 200_000,
                 what="the poll run asked for under way")
    assert p.poll() is None
    t = time.monotonic()
    d.stop()
    out, err = p.communicate(timeout=SAFETY)
    assert p.returncode == 75, (p.returncode, err)
    assert "the daemon stopped" in err and "popsift status" in err, err
    assert time.monotonic() - t < SAFETY


def test_stale_socket_falls_back_to_the_lock(dovecot, daemon, run, tmp):
    mbox = tmp / "inbox.mbox"
    cfg = make_config(tmp / "config", {"state": tmp / "state.db", "lock_wait": 5},
                      acct(dovecot, "alice", "test", interval=60, deliver=f"mbox {mbox}"))
    d = daemon(cfg)
    d.wait_for(POLL_RE.format(name="test"))
    os.killpg(d.pid, signal.SIGKILL)
    d.proc.wait(timeout=SAFETY)
    assert (tmp / "state.db.ctl").is_socket()   # left behind
    dovecot.add_message("alice", mkmsg("after-kill"))
    r = run("-f", cfg, "run", timeout=SAFETY)
    assert r.returncode == 0, r.stderr
    assert len(message_ids(mbox)) == 1
    # and the next daemon replaces the stale socket and answers on it
    d2 = daemon(cfg)
    d2.wait_for(r"^popsift: daemon started")
    dovecot.add_message("alice", mkmsg("after-restart"))
    r = run("-f", cfg, "run", timeout=LONG)
    assert r.returncode == 0, r.stderr
    assert len(message_ids(mbox)) == 2 and "run asked over" in d2.text()


def ctl_talk(path, data: bytes, timeout=SAFETY) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    if data:
        s.sendall(data)
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:   # hung up on what it did not read
            break
        if not b:
            break
        out += b
    s.close()
    return out


def test_hostile_requests_and_other_users(dovecot, daemon, run, tmp):
    mbox = tmp / "inbox.mbox"
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      acct(dovecot, "alice", "test", interval=60, deliver=f"mbox {mbox}"))
    d = daemon(cfg)
    settled(d, cfg, ["test"])
    sock = tmp / "state.db.ctl"
    assert ctl_talk(sock, b"hello\n").startswith(b"err 64 ")
    assert ctl_talk(sock, b"run \x1b[31m\n").startswith(b"err 64 no account \"\\x1b[31m\"")
    assert ctl_talk(sock, b"run a\0b\n").startswith(b"err 64 ")
    out = ctl_talk(sock, b"run " + b"x" * 100_000)
    assert out == b"" or out.startswith(b"err 64 request too long"), out
    t = time.monotonic()
    assert ctl_talk(sock, b"run test").startswith(b"err 64 no request")   # no newline
    assert time.monotonic() - t < SAFETY
    # another user cannot even connect (0600)
    uid = pt.ensure_mail_user()[0]
    pid = os.fork()
    if pid == 0:
        try:
            os.setuid(uid)
            socket.socket(socket.AF_UNIX).connect(str(sock))
            os._exit(1)
        except PermissionError:
            os._exit(0)
        except BaseException:
            os._exit(2)
    assert os.waitpid(pid, 0)[1] == 0
    # after all that, the daemon still answers
    dovecot.add_message("alice", mkmsg("after-hostile"))
    r = run("-f", cfg, "run", timeout=LONG)
    assert r.returncode == 0, r.stderr
    assert len(message_ids(mbox)) == 1
    assert d.alive()


def status_of(cfg, name):
    r = pt.run_popsift(["-f", cfg, "status", "--json", name], timeout=SAFETY)
    assert r.returncode == 0, r.stderr
    acc = json.loads(r.stdout)["accounts"]
    return acc[0] if acc else {}


def test_adaptive_interval_in_status(dovecot2, daemon, tmp):
    """Empty polls stretch the interval up to max_interval; a poll that
    finds mail brings it back to interval; a pinned interval stays."""
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      acct(dovecot2, "alice", "a", interval=2, max_interval=8,
                           deliver=f"mbox {tmp}/a.mbox"),
                      acct(dovecot2, "bob", "p", interval=2, deliver=f"mbox {tmp}/p.mbox"))
    d = daemon(cfg)
    # 2, 3, 4.5, 6.75, 8: about 16 s of empty polls
    d.wait_until(lambda: status_of(cfg, "a").get("interval") == 8, timeout=120,
                 what="a's interval stretched to max_interval 8")
    seen = {status_of(cfg, "p").get("interval") for _ in range(3)}
    assert seen == {2}, seen
    p = status_of(cfg, "p")
    assert p["min_interval"] == 2 and p["max_interval"] == 2
    a = status_of(cfg, "a")
    assert a["min_interval"] == 2 and a["max_interval"] == 8
    text = pt.run_popsift(["-f", cfg, "status", "a"], timeout=SAFETY).stdout
    assert re.search(r"interval +8 s \(adaptive, 2 to 8 s\)", text), text
    # mail: the poll that delivers it resets the interval to 2; it only
    # ever shrinks so, and takes ~16 s of empty polls to reach 8 again
    n = d.count(POLL_RE.format(name="a"))
    dovecot2.add_message("alice", mkmsg("wake"))
    d.wait_for(r"^a: 1 new, 1 delivered", timeout=60)
    assert d.count(POLL_RE.format(name="a")) > n
    d.wait_until(lambda: status_of(cfg, "a").get("interval") < 8, timeout=60,
                 what="a's interval shorter after mail")
    rc, _ = d.stop()
    assert rc == 0


def test_overloaded_daemon_polls_every_account_alike(make_dovecot, daemon, tmp):
    """More polls due than max_parallel can serve (8 accounts every second,
    one poll at a time): the longest overdue goes first, so every account
    is polled, late alike; in config order the first accounts, due again
    at once, would take every turn and the last would wait for ever."""
    users = [f"u{i}" for i in range(8)]
    dc = make_dovecot(users={u: "secret" for u in users})
    cfg = make_config(tmp / "config", {"state": tmp / "state.db", "max_parallel": 1},
                      *(acct(dc, u, u, interval=1, deliver=f"mbox {tmp}/{u}.mbox")
                        for u in users))
    d = daemon(cfg)
    d.wait_until(lambda: all(len(d.polls(u)) >= 3 for u in users), timeout=180,
                 what="every account polled 3 times")
    counts = {u: len(d.polls(u)) for u in users}
    # by then none has had many more turns than the others
    assert max(counts.values()) <= 6, counts
    rc, _ = d.stop()
    assert rc == 0
