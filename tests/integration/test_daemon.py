"""Integration tests for issue 5: `popsift daemon` against a real Dovecot.

The scheduler (per-account intervals, backoff capped by max_backoff, the
pause after 3 refused logins, max_parallel, the first round on a fresh
state database), isolation of a dead or stalling server, signals (TERM/INT
stop safely and exit 0, HUP reloads and keeps a broken config out, USR1
polls now, also during a poll; the logrotate snippet's HUP reaching a
one-shot `run`), the flock on <state>.lock (a concurrent `run` exits 75
after lock_wait, a lock left by kill -9 does not block) and `log FILE`
(timestamps, reopened on SIGHUP for logrotate).

Large fetches go through ThrottleProxy (server->client bandwidth capped)
so that a signal lands in the middle of them on any machine.

status / log / retention / contrib:   test_daemon_ops.py

Polls are counted from the daemon's own stderr (run with -v, since by
default a poll that found nothing is not logged): every poll of an account
ends with "NAME: N new, N delivered, ..." (or an error line naming the
account, then "NAME: failed (exit N): next try in S s" from the
scheduler); a reader thread stamps each line with time.monotonic().
Refused logins are counted from Dovecot's log ("Password mismatch").

Deterministic on a busy machine: tests wait for the daemon's own lines
(SAFETY is a deadline that only ends a test that would hang, never a
measure); "soon" is proved against a long interval (60 s) rather than with
a tight deadline; rates are measured between the daemon's own lines: with
-vv a poll starts at libcurl's "Trying" line and ends at its summary (or
failure) line, and the idle gap between the end of one poll and the start
of the next is the scheduler's delay (interval +-10 %, or the backoff) plus
the start-up of a child, whatever the polls themselves cost.

Run:  /usr/bin/python3 -m pytest -q tests/integration/test_daemon.py
"""

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

import popsift_test as pt
from fakepop import FakePop

POLL_RE = r"^{name}: (\d+) new, (\d+) delivered, (\d+) kept, (\d+) deleted"
FAIL_RE = r"^{name}: failed \(exit (\d+)\): next try in (\d+) s$"
PAUSE_RE = r"^{name}: paused after"
START_RE = r"^{name}: \*: +Trying "   # -vv: libcurl starts to connect

SAFETY = 30   # s: a deadline that only stops a hung test
# Idle gaps (see above) against the scheduler's delay: EARLY for the reader
# threads' stamps, LATE for a child's start-up on a busy machine (the
# median gets less: one slow start is load, most slow starts a bug).
EARLY, LATE, LATE_MEDIAN = 0.25, 1.4, 0.4


# --------------------------------------------------------------------------
# helpers

def mkmsg(tag: str, body: bytes = b"Hello.\n", size: int = 0) -> bytes:
    """A message with a unique Message-ID (LF line ends); size pads the
    body with 76-character lines up to about that many bytes."""
    mid = f"<{tag}.{uuid.uuid4().hex}@daemon.test>"
    head = (f"From: Sender <sender@example.com>\n"
            f"To: alice@example.org\n"
            f"Subject: {tag}\n"
            f"Date: Fri, 01 Mar 2024 09:00:00 +0000\n"
            f"Message-ID: {mid}\n\n").encode()
    if size > len(head) + len(body):
        line = (tag.encode() + b" " + b"x" * 76)[:76] + b"\n"
        body = body + line * ((size - len(head) - len(body)) // len(line))
    return head + body


def message_ids(path) -> list[str]:
    out = []
    for m in pt.mbox_messages(path):
        v = pt.header_values(m, "Message-ID")
        out.append(v[0] if v else "")
    return out


def server_ids(dc, user) -> list[str]:
    return [pt.header_values(m, "Message-ID")[0] for m in dc.messages(user)]


def block(header: str, keys: dict) -> str:
    lines = [header]
    for k, v in keys.items():
        if v is not None:
            lines.append(f"{k} {v}")
    return "\n".join(lines) + "\n\n"


def make_config(path, defaults: dict, *accounts: str) -> Path:
    """defaults block (state, log, max_parallel, ...) + account blocks."""
    return pt.write_config(path, block("defaults", defaults) + "".join(accounts))


def acct(dc, user, name, **keys) -> str:
    """One account block for user on Dovecot dc (tls on + CA, auth any,
    keep no), polled every `interval` (given as a keyword).  With dc None,
    host/port/... come from the keywords."""
    if dc is None:
        keys = {"user": user, "auth": "any", "keep": "no", **keys}
        return block(f"account {name}", keys)
    return pt.account_config(dc, user, name=name, **keys) + "\n"


def dovecot_refusals(dc, user: str) -> int:
    """Refused logins of user in Dovecot's log (one per attempt)."""
    return len(re.findall(rf"\({re.escape(user)},127\.0\.0\.1.*Password mismatch", dc.log()))


def dovecot_logins(dc, user: str) -> int:
    return len(re.findall(rf"pop3-login: Info: Login: user=<{re.escape(user)}>", dc.log()))


class Daemon:
    """`popsift -f CONFIG daemon` in its own process group, stdout and
    stderr read by threads into (monotonic time, stream, line) tuples."""

    def __init__(self, binary, config, env=None, verbose=False):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            # -v: polls that find nothing are logged only then
            [str(binary), *(["-vv"] if verbose else ["-v"]), "-f", str(config), "daemon"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
            start_new_session=True)
        self.pid = self.proc.pid
        self.lines: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read, args=(s, n), daemon=True)
                         for s, n in ((self.proc.stdout, "out"), (self.proc.stderr, "err"))]
        for t in self._threads:
            t.start()

    def _read(self, stream, name):
        for raw in iter(stream.readline, b""):
            with self._lock:
                self.lines.append((time.monotonic(), name,
                                   raw.decode(errors="replace").rstrip("\n")))

    def drain(self) -> None:
        """After the exit: the readers have read the pipes to the end (a
        child still holding them open may keep them a while)."""
        for th in self._threads:
            th.join(timeout=5)

    def text(self) -> str:
        with self._lock:
            return "\n".join(f"[{t - self.t0:7.3f} {s}] {ln}" for t, s, ln in self.lines)

    def matches(self, regex: str) -> list[tuple[float, re.Match]]:
        r = re.compile(regex)
        with self._lock:
            lines = list(self.lines)
        return [(t, m) for t, _, ln in lines if (m := r.search(ln))]

    def count(self, regex: str) -> int:
        return len(self.matches(regex))

    def wait_for(self, regex: str, timeout: float = SAFETY, n: int = 1):
        """Wait until regex has matched n lines; returns the n-th (t, match)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matches(regex)
            if len(found) >= n:
                return found[n - 1]
            if self.proc.poll() is not None:
                self.drain()
                raise AssertionError(f"daemon exited {self.proc.returncode} while waiting "
                                     f"for {regex!r} x{n}\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {regex!r} "
                                     f"x{n} (have {len(found)})\n{self.text()}")
            time.sleep(0.02)

    def wait_until(self, pred, timeout: float = SAFETY, what: str = "condition"):
        """wait_until() that fails at once, with the output, if the daemon died."""
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if self.proc.poll() is not None:
                self.drain()
                raise AssertionError(f"daemon exited {self.proc.returncode} while waiting "
                                     f"for {what}\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n"
                                     f"{self.text()}")
            time.sleep(0.05)

    def polls(self, name: str) -> list[float]:
        return [t for t, _ in self.matches(POLL_RE.format(name=re.escape(name)))]

    def cycles(self, name: str) -> list[tuple[float, float]]:
        """(start, end) of each finished poll of account name, in the order
        of the daemon's stderr (needs verbose): start at libcurl's first
        "Trying" line, end at the summary, failure or pause line."""
        n = re.escape(name)
        start = re.compile(START_RE.format(name=n))
        end = re.compile("|".join(x.format(name=n) for x in (POLL_RE, FAIL_RE, PAUSE_RE)))
        with self._lock:
            lines = list(self.lines)
        out, began = [], None
        for t, _, ln in lines:
            if began is None and start.search(ln):
                began = t
            elif began is not None and end.search(ln):
                out.append((began, t))
                began = None
        return out

    def idle_gaps(self, name: str) -> list[float]:
        """End of each poll of name to the start of the next one."""
        c = self.cycles(name)
        return [b[0] - a[1] for a, b in zip(c, c[1:])]

    def most_at_once(self, names) -> int:
        """The most polls under way at once, by the order of the daemon's
        stderr (verbose): exact, whatever the stamps."""
        starts = [(re.compile(START_RE.format(name=re.escape(n))),
                   re.compile("|".join(x.format(name=re.escape(n))
                                       for x in (POLL_RE, FAIL_RE, PAUSE_RE))), n)
                  for n in names]
        with self._lock:
            lines = list(self.lines)
        busy, most = set(), 0
        for _, _, ln in lines:
            for st, en, n in starts:
                if n not in busy and st.search(ln):
                    busy.add(n)
                elif n in busy and en.search(ln):
                    busy.discard(n)
            most = max(most, len(busy))
        return most

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, sig) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout: float = SAFETY) -> tuple[int, float]:
        """Send sig, wait for the exit; (exit status, seconds it took)."""
        t = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"daemon still running {timeout} s after signal {sig}\n"
                                 f"{self.text()}")
        took = time.monotonic() - t
        self.drain()
        return rc, took

    def kill(self) -> None:
        """SIGKILL the daemon and whatever of its process group is left."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def daemon(popsift, request):
    """daemon(config, env=None, fresh_state=False, verbose=False) -> a started
    Daemon (verbose: -vv, for cycles() and idle_gaps());
    killed (with its process group) after the test; its output is printed
    on failure.  Unless fresh_state, the state database is created first
    (`popsift status` opens and migrates it): the first start on a new
    database is test_fresh_state_database_first_round's business."""
    started = []

    def start(config, env=None, fresh_state=False, verbose=False):
        if not fresh_state:
            r = pt.run_popsift(["-f", config, "status"], binary=popsift, timeout=SAFETY)
            assert r.returncode == 0, r.stderr
        d = Daemon(popsift, config, env, verbose)
        started.append(d)
        return d

    yield start
    for d in started:
        failed = getattr(request.node, "rep_call", None)
        if failed is None or failed.failed:
            print(f"--- daemon {d.pid} output\n{d.text()}")
        d.kill()


class ThrottleProxy:
    """A TCP proxy on 127.0.0.1 to target_port that passes server->client
    data at `rate` bytes/s (client->server unthrottled): makes a 30 MB
    fetch take seconds so a signal lands in the middle of it."""

    def __init__(self, target_port: int, rate: float):
        self.target = target_port
        self.rate = rate
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.conns: list[socket.socket] = []
        self.active = self.max_active = self.accepted = 0
        self._mu = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            self.conns += [c, s]
            with self._mu:
                self.accepted += 1
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            threading.Thread(target=self._pump, args=(s, c, self.rate, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(c, s, None), daemon=True).start()

    def _pump(self, src, dst, rate, count=False):
        try:
            while True:
                data = src.recv(32768)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if count:
            with self._mu:
                self.active -= 1

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def throttle():
    proxies = []

    def make(port, rate):
        p = ThrottleProxy(port, rate)
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return pt.free_port()


# --------------------------------------------------------------------------
# polling

def test_new_mail_reaches_mbox_on_next_poll(dovecot, daemon, tmp):
    mbox = tmp / "inbox.mbox"
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      acct(dovecot, "alice", "test", interval=1, deliver=f"mbox {mbox}"))
    d = daemon(cfg)
    d.wait_for(r"^popsift: daemon started: 1 account, up to 16 at once$")
    d.wait_for(POLL_RE.format(name="test"))
    assert message_ids(mbox) == []

    sent = []
    for i, tag in enumerate(("first", "second")):
        m = mkmsg(tag)
        sent.append(pt.header_values(m, "Message-ID")[0])
        before = len(d.polls("test"))
        dovecot.add_message("alice", m)
        t_got, _ = d.wait_for(r"^test: 1 new, 1 delivered", n=i + 1)
        # a later poll took it: the first to end after the message was added
        # may have listed the mailbox before; one more for a late stamp
        after = d.polls("test")[before:]
        assert t_got in after[:3], \
            f"message {i} delivered by the poll ending at {t_got - d.t0:.3f}, after " \
            f"{[round(t - d.t0, 3) for t in after]}\n{d.text()}"
        assert message_ids(mbox) == sent
        # the mbox is written before the commit and DELE: wait for those
        d.wait_until(lambda: dovecot.count("alice") == 0, what="the message deleted (keep no)")
    # one more poll: nothing new, the earlier messages not delivered again
    n = len(d.polls("test"))
    _, m = d.wait_for(POLL_RE.format(name="test"), n=n + 1)
    assert m.group(1) == "0", d.text()
    assert message_ids(mbox) == sent
    assert d.alive()
    rc, took = d.stop(signal.SIGINT)
    assert rc == 0, d.text()
    assert took < 10, f"SIGINT took {took:.1f} s"
    assert d.count(r"^popsift: daemon stopped$") == 1, d.text()


def gap_info(d, *names) -> str:
    return "; ".join(f"{n}: idle gaps {[round(g, 2) for g in d.idle_gaps(n)]}"
                     for n in names) + "\n" + d.text()


def assert_cadence(d, name, interval, gaps=None):
    """Each poll of name started interval * [0.9, 1.1] after the previous
    one ended, within EARLY / LATE (LATE_MEDIAN for the median)."""
    gaps = d.idle_gaps(name) if gaps is None else gaps
    info = f"{name}, interval {interval}: idle gaps {[round(g, 2) for g in gaps]}\n{d.text()}"
    assert gaps, info
    assert min(gaps) >= 0.9 * interval - EARLY, info
    assert statistics.median(gaps) <= 1.1 * interval + LATE_MEDIAN, info
    assert max(gaps) <= 1.1 * interval + LATE, info


def test_two_accounts_poll_at_their_own_rates(dovecot, daemon, tmp):
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      acct(dovecot, "alice", "fast", interval=1, deliver=f"mbox {tmp}/fast.mbox"),
                      acct(dovecot, "bob", "slow", interval=3, deliver=f"mbox {tmp}/slow.mbox"))
    d = daemon(cfg, verbose=True)
    d.wait_until(lambda: len(d.cycles("slow")) >= 4 and len(d.cycles("fast")) >= 8,
                 what="four polls of 'slow' and eight of 'fast'")
    rc, _ = d.stop()
    assert rc == 0
    fast, slow = d.idle_gaps("fast"), d.idle_gaps("slow")
    info = gap_info(d, "fast", "slow")
    assert len(slow) >= 3 and len(fast) >= 7, info
    assert_cadence(d, "fast", 1, fast)
    assert_cadence(d, "slow", 3, slow)
    # both Dovecot users were really logged in once per poll (a poll cut
    # short by the stop may have logged in without a summary)
    for user, name in (("alice", "fast"), ("bob", "slow")):
        n = len(d.cycles(name))
        d.wait_until(lambda: dovecot_logins(dovecot, user) >= n, what=f"{n} logins of {user}")
        assert dovecot_logins(dovecot, user) <= n + 1, info


def test_closed_port_backs_off_while_others_deliver(dovecot, daemon, tmp):
    dead_port = closed_port()
    mbox = tmp / "live.mbox"
    cfg = make_config(
        tmp / "config", {"state": tmp / "state.db"},
        acct(None, "nobody", "dead", host="127.0.0.1", port=dead_port, tls="off",
             password="x", interval=1, max_backoff=4, deliver=f"mbox {tmp}/dead.mbox"),
        acct(dovecot, "alice", "live", interval=1, deliver=f"mbox {mbox}"))
    d = daemon(cfg, verbose=True)
    fail_re = FAIL_RE.format(name="dead")
    d.wait_for(fail_re)
    # while the dead account backs off, the live one delivers on its next polls
    sent = []
    for i in range(3):
        m = mkmsg(f"live{i}")
        sent.append(pt.header_values(m, "Message-ID")[0])
        dovecot.add_message("alice", m)
        d.wait_for(r"^live: 1 new, 1 delivered", n=i + 1)
    d.wait_for(fail_re, n=3)
    rc, _ = d.stop()
    assert rc == 0
    fails = d.matches(fail_re)
    delays = [int(m.group(2)) for _, m in fails]
    gaps = d.idle_gaps("dead")
    info = f"dead: delays {delays}\n{gap_info(d, 'dead', 'live')}"
    # interval 1 doubled per failure: ~2, then ~4 = max_backoff, then capped
    assert 2 <= delays[0] <= 3, info
    assert delays == sorted(delays), info
    assert all(d_ <= 4 for d_ in delays), info
    assert delays[2] == 4, info
    # and the daemon waited as long as it said (the delay is printed rounded)
    for k in range(2):
        assert delays[k] - 0.5 - EARLY <= gaps[k] <= delays[k] + 0.5 + LATE, info
    # the error names the account and the cause
    assert d.count(r"^dead: .*(refused|connect)") >= 3, info
    assert message_ids(mbox) == sent
    # the live account kept its own cadence all along, and delivered while
    # 'dead' was backing off (before its third failure)
    assert_cadence(d, "live", 1)
    first = d.matches(r"^live: 1 new, 1 delivered")[0][0]
    assert first < fails[2][0], info


STALL_TIMEOUT = 12   # s: long enough for 'live' to deliver 3 times meanwhile


def test_stalling_server_does_not_delay_others(dovecot, daemon, tmp):
    mbox = tmp / "live.mbox"
    with FakePop([mkmsg("never")], ["u1"], stall="accept") as stall:
        cfg = make_config(
            tmp / "config", {"state": tmp / "state.db"},
            acct(stall, "alice", "stall", tls="off", auth="user", timeout=STALL_TIMEOUT,
                 interval=1, deliver=f"mbox {tmp}/stall.mbox"),
            acct(dovecot, "alice", "live", interval=1, deliver=f"mbox {mbox}"))
        d = daemon(cfg, verbose=True)
        d.wait_until(lambda: stall.connections >= 1, what="the stalling server connected")
        t_stall = time.monotonic()
        sent = []
        for i in range(3):
            m = mkmsg(f"live{i}")
            sent.append(pt.header_values(m, "Message-ID")[0])
            dovecot.add_message("alice", m)
            d.wait_for(r"^live: 1 new, 1 delivered", n=i + 1)
        # the stalled poll gives up after `timeout` and says so
        t_err, _ = d.wait_for(r"^stall: .*(time|Timeout|timed out)",
                              timeout=STALL_TIMEOUT + SAFETY)
        assert STALL_TIMEOUT - 1 <= t_err - t_stall <= STALL_TIMEOUT + 10, d.text()
        d.wait_for(FAIL_RE.format(name="stall"))
        # all three delivered while 'stall' hung, on live's own cadence
        got = [t for t, _ in d.matches(r"^live: 1 new, 1 delivered")]
        assert len(got) == 3 and got[-1] < t_err, d.text()
        live = d.cycles("live")
        during = [c[0] - p[1] for p, c in zip(live, live[1:])
                  if p[1] >= t_stall and c[0] <= t_err]
        assert len(during) >= 3, gap_info(d, "live")
        assert_cadence(d, "live", 1, during)
        assert message_ids(mbox) == sent
        # stopping while a poll hangs on the stalled server: the poll gets
        # TERM, then KILL 5 s later, so the stop need not wait out `timeout`
        d.wait_until(lambda: stall.connections >= 2, what="a second stalled poll")
        rc, took = d.stop(timeout=STALL_TIMEOUT + SAFETY)
        assert rc == 0, d.text()
        assert took < 10 < STALL_TIMEOUT, f"SIGTERM during a stalled poll took {took:.1f} s"


def test_max_parallel_bounds_concurrent_polls(make_dovecot, daemon, tmp, throttle):
    users = {f"u{i}": "secret" for i in range(5)}
    dc = make_dovecot(users=users)
    proxy = throttle(dc.port_ssl, 2_000_000)   # 2 MB per account: ~1 s each
    accounts = []
    for u in users:
        dc.add_messages(u, [mkmsg(f"{u}-{k}", size=200_000) for k in range(10)])
        accounts.append(acct(dc, u, u, port=proxy.port, interval=60,
                             deliver=f"mbox {tmp}/{u}.mbox"))
    cfg = make_config(tmp / "config", {"state": tmp / "state.db", "max_parallel": 2}, *accounts)
    d = daemon(cfg, verbose=True)
    d.wait_for(r"^popsift: daemon started: 5 accounts, up to 2 at once$")
    for u in users:
        d.wait_for(POLL_RE.format(name=u))
    assert proxy.accepted == 5
    # counted in the order the polls wrote their first and last lines
    # (the proxy's threads could see a closed connection late)
    most = d.most_at_once(list(users))
    assert most == 2, f"{most} polls at once with max_parallel 2\n{d.text()}"
    for u in users:
        assert len(message_ids(tmp / f"{u}.mbox")) == 10 and dc.count(u) == 0
    rc, _ = d.stop()
    assert rc == 0


def test_fresh_state_database_first_round(daemon, tmp):
    """The first round on a new state database: the children of the daemon
    create it at the same moment, and none may fail for it ("database is
    locked"), whatever their servers do.  Two accounts on closed ports make
    the race tight (no connect time); ten fresh starts."""
    for trial in range(10):
        d_ = tmp / f"t{trial}"
        d_.mkdir()
        cfg = make_config(d_ / "config", {"state": d_ / "state.db"},
                          *(acct(None, "x", f"a{i}", host="127.0.0.1", port=closed_port(),
                                 tls="off", password="y", interval=60,
                                 deliver=f"mbox {d_}/a.mbox") for i in range(2)))
        d = daemon(cfg, fresh_state=True)
        d.wait_for(FAIL_RE.format(name="a0"))
        d.wait_for(FAIL_RE.format(name="a1"))
        rc, _ = d.stop()
        assert rc == 0
        locked = d.matches(r"database is locked")
        assert not locked, f"start {trial + 1} on a fresh state database:\n{d.text()}"
        assert d.count(r"^a[01]: failed \(exit 69\)") == 2, d.text()


# --------------------------------------------------------------------------
# signals

def test_sigterm_during_large_fetch_loses_nothing(dovecot, daemon, run, tmp, throttle):
    n, size = 300, 100_000
    msgs = [mkmsg(f"big{i:03d}", size=size) for i in range(n)]
    ids = [pt.header_values(m, "Message-ID")[0] for m in msgs]
    dovecot.add_messages("alice", msgs)
    proxy = throttle(dovecot.port_ssl, 4_000_000)   # 30 MB at 4 MB/s: ~7.5 s
    mbox = tmp / "inbox.mbox"
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      acct(dovecot, "alice", "test", port=proxy.port, interval=1,
                           deliver=f"mbox {mbox}"))
    d = daemon(cfg)
    d.wait_until(lambda: mbox.exists() and mbox.stat().st_size > 5_000_000,
                 what="the fetch under way (5 MB in the mbox)")
    rc, took = d.stop(signal.SIGTERM)
    assert rc == 0, d.text()
    assert took < 10, f"SIGTERM took {took:.1f} s to stop the daemon\n{d.text()}"

    got = message_ids(mbox)
    left = server_ids(dovecot, "alice")
    # SIGTERM with 25 MB (>6 s) still to come: a daemon that finished the
    # fetch before it stopped would have delivered all of them
    assert 0 < len(got) < n, f"{len(got)} delivered: SIGTERM did not land mid-fetch"
    assert len(set(got)) == len(got), "duplicates in the mbox"
    assert got == ids[:len(got)], "the mbox is not a prefix of the server's order"
    # nothing lost: every message is delivered or still on the server
    assert set(got) | set(left) == set(ids), "messages lost"
    # every delivered message is whole
    for m in pt.mbox_messages(mbox):
        assert len(m) >= size - 200, "a truncated message in the mbox"

    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    final = message_ids(mbox)
    assert final == ids, f"after the rerun: {len(final)} messages, " \
                         f"{len(final) - len(set(final))} duplicates"
    assert dovecot.count("alice") == 0
    m = re.search(r"test: (\d+) new, (\d+) delivered", r.stderr)
    assert m and int(m.group(2)) == n - len(got), r.stderr


def test_sighup_does_not_kill_a_one_shot_run(dovecot, popsift, run, tmp, throttle):
    """contrib/popsift.logrotate's postrotate runs `pkill -HUP -x popsift`:
    that reaches a `popsift run` from cron or the timer too, which must not
    die of it (it reopens its log file, or ignores the signal)."""
    n = 60
    msgs = [mkmsg(f"hup{i:02d}", size=100_000) for i in range(n)]
    ids = [pt.header_values(m, "Message-ID")[0] for m in msgs]
    dovecot.add_messages("alice", msgs)
    proxy = throttle(dovecot.port_ssl, 4_000_000)   # 6 MB: ~1.5 s
    mbox = tmp / "inbox.mbox"
    log = tmp / "popsift.log"
    cfg = make_config(tmp / "config", {"state": tmp / "state.db", "log": log},
                      acct(dovecot, "alice", "test", port=proxy.port, deliver=f"mbox {mbox}"))
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "run"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    t = time.monotonic()
    while not (mbox.exists() and mbox.stat().st_size > 1_000_000):
        assert time.monotonic() - t < SAFETY and p.poll() is None, "the run did not get going"
        time.sleep(0.01)
    if log.exists():
        os.rename(log, tmp / "popsift.log.1")   # as logrotate does before postrotate
    assert p.poll() is None, "the run ended before the SIGHUP"   # 5 MB (~1.2 s) to come
    p.send_signal(signal.SIGHUP)
    out, err = p.communicate(timeout=SAFETY * 2)
    assert p.returncode == 0, f"`popsift run` got SIGHUP mid-fetch: exit {p.returncode}\n{err}"
    assert message_ids(mbox) == ids
    assert dovecot.count("alice") == 0


def test_sighup_with_broken_config_keeps_running(dovecot, daemon, tmp):
    mbox = tmp / "inbox.mbox"
    good = acct(dovecot, "alice", "test", interval=1, deliver=f"mbox {mbox}")
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"}, good)
    d = daemon(cfg)
    d.wait_for(POLL_RE.format(name="test"))

    pt.write_config(cfg, good + "account broken\nthis_is_no_key 1\n")
    d.send(signal.SIGHUP)
    _, m = d.wait_for(r"^popsift: reload failed, keeping the running config: (.*)$")
    assert "this_is_no_key" in m.group(1) and str(cfg) in m.group(1), d.text()
    n_before = len(d.polls("test"))
    msg = mkmsg("after-broken-hup")
    dovecot.add_message("alice", msg)
    d.wait_for(r"^test: 1 new, 1 delivered")
    assert len(message_ids(mbox)) == 1
    d.wait_for(POLL_RE.format(name="test"), n=n_before + 2)
    assert d.alive()

    # an unreadable config (deleted) is no better: still running
    os.rename(cfg, tmp / "config.moved")
    d.send(signal.SIGHUP)
    d.wait_for(r"^popsift: reload failed", n=2)
    os.rename(tmp / "config.moved", cfg)

    # a good config with a second account: reloaded, the new account polled
    make_config(cfg, {"state": tmp / "state.db"}, good,
                acct(dovecot, "bob", "second", interval=1, deliver=f"mbox {tmp}/bob.mbox"))
    dovecot.add_message("bob", mkmsg("for-bob"))
    d.send(signal.SIGHUP)
    d.wait_for(r"^popsift: reloaded .*: 2 accounts$")
    d.wait_for(r"^second: 1 new, 1 delivered")
    assert len(message_ids(tmp / "bob.mbox")) == 1
    rc, _ = d.stop()
    assert rc == 0


def test_account_removed_by_sighup_while_polling(dovecot, daemon, tmp, throttle):
    """SIGHUP with a config that drops an account whose poll is under way:
    the poll ends, and its slot must not stay counted against max_parallel
    (here 1: the remaining account would never be polled again), nor keep
    SIGTERM waiting for it."""
    dovecot.add_messages("alice", [mkmsg(f"slow{i}", size=100_000) for i in range(30)])
    proxy = throttle(dovecot.port_ssl, 600_000)   # 3 MB: ~5 s
    other = acct(dovecot, "bob", "other", interval=1, deliver=f"mbox {tmp}/other.mbox")
    slow = acct(dovecot, "alice", "slow", port=proxy.port, interval=60,
                deliver=f"mbox {tmp}/slow.mbox")
    defaults = {"state": tmp / "state.db", "max_parallel": 1}
    cfg = make_config(tmp / "config", defaults, slow, other)
    d = daemon(cfg)
    d.wait_until(lambda: (tmp / "slow.mbox").exists(), what="the slow poll under way")
    make_config(cfg, defaults, other)
    d.send(signal.SIGHUP)
    t_reload, _ = d.wait_for(r"^popsift: reloaded .*: 1 account$")
    t_slow, _ = d.wait_for(POLL_RE.format(name="slow"))
    assert t_reload < t_slow, "the reload came after the poll of 'slow' ended:\n" + d.text()
    dovecot.add_message("bob", mkmsg("for-other"))
    d.wait_for(r"^other: 1 new, 1 delivered")
    n = len(d.polls("other"))
    d.wait_for(POLL_RE.format(name="other"), n=n + 2)
    rc, took = d.stop()
    assert rc == 0 and took < 10, f"exit {rc} after {took:.1f} s"


def test_sigusr1_polls_every_account_now(dovecot, daemon, tmp):
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      acct(dovecot, "alice", "a", interval=60, deliver=f"mbox {tmp}/a.mbox"),
                      acct(dovecot, "bob", "b", interval=60, deliver=f"mbox {tmp}/b.mbox"))
    d = daemon(cfg)
    t_first = min(d.wait_for(POLL_RE.format(name=n))[0] for n in ("a", "b"))
    dovecot.add_message("alice", mkmsg("usr1-a"))
    dovecot.add_message("bob", mkmsg("usr1-b"))
    # both polls reaped, the next ones ~60 s away (a SIGUSR1 during a poll
    # is test_sigusr1_during_a_poll_is_not_lost's business)
    for n in ("a", "b"):
        d.wait_until(lambda: (next_poll_in(cfg, n) or 0) > 40, what=f"{n} waiting ~60 s")
    assert message_ids(tmp / "a.mbox") == [] and len(d.polls("a")) == 1
    d.send(signal.SIGUSR1)
    # interval 60 (at least 54 s): a second poll within SAFETY (30 s) of the
    # first can only be the SIGUSR1's; each delivers the new message
    for n in ("a", "b"):
        t, m = d.wait_for(POLL_RE.format(name=n), n=2)
        assert m.group(2) == "1" and t - t_first < SAFETY, d.text()
        assert len(message_ids(tmp / f"{n}.mbox")) == 1
    # and then back to the interval: the next poll is about 60 s away
    for n in ("a", "b"):
        d.wait_until(lambda: (next_poll_in(cfg, n) or 0) > 40, what=f"{n} waiting ~60 s again")
    assert len(d.polls("a")) == 2 and len(d.polls("b")) == 2
    rc, _ = d.stop()
    assert rc == 0


def next_poll_in(cfg, name) -> float | None:
    """Seconds until the daemon's next poll of name, from `popsift status
    --json` (None while it polls or before it has a schedule)."""
    r = pt.run_popsift(["-f", cfg, "status", "--json", name], timeout=SAFETY)
    assert r.returncode == 0, r.stderr
    acc = json.loads(r.stdout)["accounts"]   # (listed once it has run)
    if not acc or acc[0].get("daemon_state") != "waiting":
        return None
    a = acc[0]
    return time.mktime(time.strptime(a["next_poll"], "%Y-%m-%d %H:%M:%S")) - time.time()


# Dovecot delays every login from an IP after a refused one (its anvil "auth
# penalty": 2, 4, 8 ... up to 15 s, for all users from that IP); off here,
# so that the timing is popsift's own.
NO_AUTH_PENALTY = "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"


@pytest.fixture
def dovecot_np(make_dovecot):
    return make_dovecot(users={"alice": "secret", "bob": "secret"}, extra_conf=NO_AUTH_PENALTY)


def test_sigusr1_during_a_poll_is_not_lost(dovecot, daemon, tmp, throttle):
    """SIGUSR1 while an account's poll is under way: mail that arrived after
    that poll listed the mailbox is fetched right after it, not one
    interval later."""
    dovecot.add_messages("alice", [mkmsg(f"slow{i}", size=100_000) for i in range(30)])
    proxy = throttle(dovecot.port_ssl, 1_000_000)   # 3 MB: ~3 s
    mbox = tmp / "inbox.mbox"
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      acct(dovecot, "alice", "test", port=proxy.port, interval=60,
                           deliver=f"mbox {mbox}"))
    d = daemon(cfg)
    d.wait_until(lambda: mbox.exists() and mbox.stat().st_size > 500_000,
                 what="the first poll under way")
    late = mkmsg("late")
    dovecot.add_message("alice", late)
    assert d.polls("test") == [], "the first poll ended before the SIGUSR1"   # 2.5 MB to come
    d.send(signal.SIGUSR1)
    _, m = d.wait_for(POLL_RE.format(name="test"))
    assert m.group(1) == "30", d.text()   # it had listed the mailbox before `late`
    # interval 60: within SAFETY, the second poll can only be the SIGUSR1's
    _, m = d.wait_for(POLL_RE.format(name="test"), n=2)
    assert m.group(1) == "1" and m.group(2) == "1", d.text()
    ids = message_ids(mbox)
    assert len(ids) == 31 and ids[-1] == pt.header_values(late, "Message-ID")[0]
    rc, _ = d.stop()
    assert rc == 0


def wrong_password_config(dovecot, tmp, password):
    return make_config(
        tmp / "config", {"state": tmp / "state.db"},
        # auth plain: one login attempt per poll (`auth any` would follow a
        # refused CRAM-MD5 with USER/PASS: two per poll)
        acct(dovecot, "alice", "locked", password=password, interval=1, max_backoff=1,
             auth="plain", deliver=f"mbox {tmp}/locked.mbox"),
        acct(dovecot, "bob", "other", interval=1, deliver=f"mbox {tmp}/other.mbox"))


def pause_after_three(dovecot, daemon, tmp):
    cfg = wrong_password_config(dovecot, tmp, "wrong")
    d = daemon(cfg)
    t_pause, m = d.wait_for(r"^locked: paused after (\d+) refused logins")
    assert m.group(1) == "3"
    assert d.count(r"^locked: .*(refused|denied|authentication)") >= 3, d.text()
    d.wait_until(lambda: dovecot_refusals(dovecot, "alice") >= 3, what="3 refusals logged")
    assert dovecot_refusals(dovecot, "alice") == 3, dovecot.log()
    return cfg, d, t_pause


def still_paused(d, dovecot, t_pause, since, why):
    """Wait 4 polls of 'other' after since (3 idle gaps of interval 1: more
    than the 1 s max_backoff of 'locked' and a slow start), then check that
    'locked' tried no login: nothing in the daemon's output, nor Dovecot's."""
    n = len([t for t in d.polls("other") if t <= since])
    d.wait_for(POLL_RE.format(name="other"), n=n + 4)
    tried = [m.string for t, m in d.matches(r"^locked: ") if t > t_pause]
    assert not tried, f"{why}: {tried}\n{d.text()}"
    assert dovecot_refusals(dovecot, "alice") == 3, f"{why}\n" + dovecot.log()


def test_three_refused_logins_pause_the_account(dovecot_np, daemon, tmp):
    dovecot = dovecot_np
    cfg, d, t_pause = pause_after_three(dovecot, daemon, tmp)
    # paused: no 4th login attempt, while the other account keeps polling
    dovecot.add_message("bob", mkmsg("bob-while-paused"))
    d.wait_for(r"^other: 1 new, 1 delivered")
    still_paused(d, dovecot, t_pause, time.monotonic(), "a login attempt while paused")
    assert len(message_ids(tmp / "other.mbox")) == 1
    # SIGHUP with unchanged login settings: still paused
    d.send(signal.SIGHUP)
    t_hup, _ = d.wait_for(r"^popsift: reloaded")
    still_paused(d, dovecot, t_pause, t_hup, "SIGHUP without a login change unpaused it")
    # SIGUSR1: retry now
    d.send(signal.SIGUSR1)
    d.wait_until(lambda: dovecot_refusals(dovecot, "alice") >= 4,
                 what="a login attempt after SIGUSR1")
    rc, _ = d.stop()
    assert rc == 0


def test_sighup_with_fixed_password_unpauses(dovecot_np, daemon, tmp):
    dovecot = dovecot_np
    cfg, d, t_pause = pause_after_three(dovecot, daemon, tmp)
    m = mkmsg("after-fix")
    dovecot.add_message("alice", m)
    still_paused(d, dovecot, t_pause, time.monotonic(), "a login attempt while paused")
    wrong_password_config(dovecot, tmp, "secret")
    d.send(signal.SIGHUP)
    d.wait_for(r"^locked: login settings changed: polling again$")
    # the summary: after the mbox write, the commit, DELE and QUIT
    d.wait_for(r"^locked: 1 new, 1 delivered")
    assert message_ids(tmp / "locked.mbox") == pt.header_values(m, "Message-ID")
    d.wait_until(lambda: dovecot.count("alice") == 0, what="the DELE after delivery")
    # and it stays on its interval afterwards
    n = len(d.polls("locked"))
    d.wait_for(POLL_RE.format(name="locked"), n=n + 2)
    rc, _ = d.stop()
    assert rc == 0


# --------------------------------------------------------------------------
# the lock on the state database

def test_concurrent_run_waits_lock_wait_then_exits_75(dovecot, daemon, run, tmp):
    mbox = tmp / "inbox.mbox"
    state = tmp / "state.db"
    account = acct(dovecot, "alice", "test", interval=1, deliver=f"mbox {mbox}")
    cfg = make_config(tmp / "config", {"state": state}, account)
    cfg_run = make_config(tmp / "config.run", {"state": state, "lock_wait": 1}, account)
    first = [mkmsg(f"a{i}") for i in range(5)]
    dovecot.add_messages("alice", first)
    d = daemon(cfg)
    d.wait_for(r"^test: 5 new, 5 delivered")
    assert len(message_ids(mbox)) == 5
    assert (tmp / "state.db.lock").exists()
    # a daemon `run` cannot ask (no control socket: test_daemon_ctl.py)
    # holds the lock like any other popsift
    (tmp / "state.db.ctl").unlink()

    second = [mkmsg(f"b{i}") for i in range(5)]
    dovecot.add_messages("alice", second)
    t = time.monotonic()
    r = run("-f", cfg_run, "run", timeout=SAFETY)
    took = time.monotonic() - t
    assert r.returncode == 75, (r.returncode, r.stderr)
    # waited lock_wait, then gave up: not at once, nor the default 60 s
    assert 0.9 <= took < 10, f"lock_wait 1 but run took {took:.1f} s"
    assert re.search(r"another popsift", r.stderr) and str(state) in r.stderr, r.stderr
    assert "try again later" in r.stderr
    assert r.stdout == ""

    # a run with a longer lock_wait gets the lock once the daemon stops
    make_config(cfg_run, {"state": state, "lock_wait": 15}, account)
    dovecot.add_messages("alice", [mkmsg(f"c{i}") for i in range(5)])
    waiter = subprocess.Popen([str(pt.popsift_path()), "-f", str(cfg_run), "run"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # it opens the lock file, then waits for the flock the daemon holds
    lock = tmp / "state.db.lock"
    d.wait_until(lambda: waiter.poll() is not None or has_open(waiter.pid, lock),
                 what="the run waiting for the lock")
    assert waiter.poll() is None, "run did not wait for the lock: " + waiter.communicate()[1]
    rc, _ = d.stop()
    assert rc == 0
    out, err = waiter.communicate(timeout=SAFETY)
    assert waiter.returncode == 0, err

    ids = message_ids(mbox)
    assert len(ids) == 15 and len(set(ids)) == 15, f"{len(ids)} delivered, duplicates?"
    assert dovecot.count("alice") == 0


def has_open(pid: int, path: Path) -> bool:
    """Whether process pid has path open (Linux /proc)."""
    want = os.path.realpath(path)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == want:
                return True
        except OSError:
            pass
    return False


def test_lock_left_by_kill9_does_not_block_next_start(dovecot, daemon, run, tmp):
    mbox = tmp / "inbox.mbox"
    cfg = make_config(tmp / "config", {"state": tmp / "state.db", "lock_wait": 0},
                      acct(dovecot, "alice", "test", interval=60, deliver=f"mbox {mbox}"))
    d1 = daemon(cfg)
    d1.wait_for(POLL_RE.format(name="test"))
    # a second daemon while the first runs: refused at once, exit 75
    d_again = daemon(cfg)
    try:
        rc = d_again.proc.wait(timeout=SAFETY)
    except subprocess.TimeoutExpired:
        rc = None
    d_again.drain()
    assert rc == 75, f"a second daemon on the same state: exit {rc}\n{d_again.text()}"
    assert re.search(r"another popsift", d_again.text()), d_again.text()

    os.kill(d1.pid, signal.SIGKILL)
    d1.proc.wait(timeout=SAFETY)
    assert (tmp / "state.db.lock").exists()   # the file stays; the flock does not

    d2 = daemon(cfg)
    d2.wait_for(r"^popsift: daemon started")
    d2.wait_for(POLL_RE.format(name="test"))
    # the poll reaped, the next one ~60 s away: a poll now is the SIGUSR1's
    d2.wait_until(lambda: (next_poll_in(cfg, "test") or 0) > 40, what="the next poll ~60 s away")
    dovecot.add_message("alice", mkmsg("after-kill9"))
    d2.send(signal.SIGUSR1)
    d2.wait_for(r"^test: 1 new, 1 delivered")
    assert len(message_ids(mbox)) == 1
    os.kill(d2.pid, signal.SIGKILL)
    d2.proc.wait(timeout=SAFETY)
    # and a one-shot run with lock_wait 0 gets the lock too
    dovecot.add_message("alice", mkmsg("after-kill9-run"))
    r = run("-f", cfg, "run", timeout=SAFETY)
    assert r.returncode == 0, r.stderr
    assert len(message_ids(mbox)) == 2


# --------------------------------------------------------------------------
# log FILE

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d (popsift|test): ")


def test_log_file_timestamped_and_reopened_on_sighup(dovecot, daemon, tmp):
    log = tmp / "popsift.log"
    cfg = make_config(tmp / "config", {"state": tmp / "state.db", "log": log},
                      acct(dovecot, "alice", "test", interval=1,
                           deliver=f"mbox {tmp}/inbox.mbox"))
    d = daemon(cfg)
    d.wait_until(lambda: log.exists() and len(re.findall(r"test: \d+ new", log.read_text())) >= 2,
                 what="two poll lines in the log file")
    lines = log.read_text().splitlines()
    assert any("daemon started" in ln for ln in lines)
    bad = [ln for ln in lines if not TS_RE.match(ln)]
    assert not bad, f"log lines without a timestamp: {bad}"
    stamp = lines[-1][:19]
    assert abs(time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) - time.time()) < 30

    # logrotate: rename, then SIGHUP; new lines go to a new file
    rotated = tmp / "popsift.log.1"
    os.rename(log, rotated)
    d.send(signal.SIGHUP)
    # a poll that ends in the new file started after the reopen: from then
    # on, nothing may be written to the rotated file
    d.wait_until(lambda: log.exists() and re.search(r"test: \d+ new", log.read_text()),
                 what="poll lines in the reopened log file")
    size_rotated = rotated.stat().st_size
    dovecot.add_message("alice", mkmsg("after-rotate"))
    d.wait_until(lambda: re.search(r"test: 1 new, 1 delivered", log.read_text()),
                 what="the delivery logged in the new file")
    n = len(re.findall(r"test: \d+ new", log.read_text()))
    d.wait_until(lambda: len(re.findall(r"test: \d+ new", log.read_text())) > n,
                 what="one more poll logged in the new file")
    assert rotated.stat().st_size == size_rotated, "still writing to the rotated file"
    new_lines = log.read_text().splitlines()
    assert any("reloaded" in ln for ln in new_lines), new_lines
    assert all(TS_RE.match(ln) for ln in new_lines), new_lines
    rc, _ = d.stop()
    assert rc == 0
    assert "daemon stopped" in log.read_text()
    # with a log file, nothing on stderr
    assert d.count(r".") == 0, d.text()
