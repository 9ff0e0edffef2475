#!/usr/bin/python3
"""daemon.py — the daemon's benchmarks (as root; both by default):

round (issue 5): 50 accounts on one Dovecot, one round of `popsift daemon`
with max_parallel 8, against the sum of the times of the same 50 accounts
fetched one at a time (`popsift run ACCOUNT`).

scale (issue 16): 1,000 accounts, interval 60 s, for 5 minutes, over POP3S
with the certificate checked (tls_ca_file), nothing new: every account
polled every interval?  Per account: the number of polls, the longest gap
between two polls; the lag of polls after their due time (max and mean,
from the "usage:" line the daemon logs when it stops; n/a from an older
binary); CPU seconds per poll (the daemon and its children,
/proc/PID/stat utime+stime+cutime+cstime); peak RSS of the daemon (VmHWM)
and of a poll (the usage line: getrusage of its children; sampled from
/proc as well).

    /usr/bin/python3 bench/daemon.py [--mode round|scale|both]
        [--accounts 50] [--parallel 8] [--messages 20] [--size 20000]
        [--delay-ms 0,10] [--runs 3]
        [--scale-accounts 1000] [--interval 60] [--minutes 5] [--scale-parallel 32]

Dovecot runs its pop3-login in performance mode for the scale run (one
login process serves many connections), so that the machine's CPU goes
to popsift rather than to a server that would in real life be elsewhere.

As root (it starts a throwaway Dovecot, tests/lib/popsift_test.py).  Every
account is a Dovecot user with the same mail (--messages of about --size
bytes), fetched over POP3S and delivered to its own mbox, keep no.  For
each --delay-ms value (0: loopback; 10: through bench/delayproxy.py, 10 ms
each way = 20 ms RTT, like a remote provider):

  single  for each account, a fresh `popsift -f CONFIG run ACCOUNT` on
          freshly loaded mail; wall time of each, summed
  daemon  mail reloaded, fresh (empty) state; `popsift daemon` started; the round
          is over when all accounts have logged their summary line; wall
          time from the start of the process to the last line

round prints one table; --runs repeats both and reports the median.
Environment: POPSIFT=path picks the binary.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests" / "lib"))

import popsift_test as pt  # noqa: E402

SUMMARY = re.compile(r"^(\S+): (\d+) new, (\d+) delivered, .* in ([\d.]+) s$")


def make_message(user: str, k: int, size: int) -> bytes:
    head = (f"From: Sender <sender@example.com>\nTo: {user}@example.org\n"
            f"Subject: bench {user} {k}\nDate: Fri, 01 Mar 2024 09:00:00 +0000\n"
            f"Message-ID: <{user}.{k}.{time.time_ns()}@bench.test>\n\n").encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\n"
    return head + line * max(1, (size - len(head)) // len(line))


class Bench:
    def __init__(self, args):
        self.args = args
        self.popsift = str(pt.popsift_path())
        self.users = [f"b{i:02d}" for i in range(args.accounts)]
        self.dc = pt.Dovecot(users={u: "secret" for u in self.users},
                             extra_conf="mail_max_userip_connections = 200\n"
                                        "default_process_limit = 200\n")
        self.work = Path(tempfile.mkdtemp(prefix="popsift-bench-daemon-"))
        self.proxy = None

    def close(self):
        self.stop_proxy()
        self.dc.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    # -- setup -------------------------------------------------------------

    def start_proxy(self, delay_ms: float) -> int:
        self.stop_proxy()
        if delay_ms <= 0:
            return self.dc.port_ssl
        port = pt.free_port()
        self.proxy = subprocess.Popen(
            [sys.executable, str(BENCH / "delayproxy.py"), str(port), str(self.dc.port_ssl),
             str(delay_ms)], stdout=subprocess.PIPE, text=True)
        if self.proxy.stdout.readline().strip() != "ready":
            raise RuntimeError("delayproxy did not start")
        return port

    def stop_proxy(self):
        if self.proxy is not None:
            self.proxy.send_signal(signal.SIGTERM)
            try:
                self.proxy.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait()
            self.proxy = None

    def load_mail(self, users):
        for u in users:
            self.dc.clear(u)
            self.dc.add_messages(u, [make_message(u, k, self.args.size)
                                     for k in range(self.args.messages)])

    def config(self, d: Path, port: int) -> Path:
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        text = (f"defaults\nstate {d}/state.db\nmax_parallel {self.args.parallel}\n"
                f"interval 3600\ntimeout 60\n\n")
        for u in self.users:
            text += pt.account_config(self.dc, u, name=u, port=port,
                                      deliver=f"mbox {d}/{u}.mbox") + "\n"
        return pt.write_config(d / "config", text)

    # -- the two measurements ------------------------------------------------

    def single(self, port: int) -> tuple[float, list[float]]:
        self.load_mail(self.users)
        cfg = self.config(self.work / "single", port)
        times = []
        for u in self.users:
            t = time.monotonic()
            r = subprocess.run([self.popsift, "-q", "-f", str(cfg), "run", u],
                               capture_output=True, text=True)
            times.append(time.monotonic() - t)
            if r.returncode != 0:
                raise RuntimeError(f"run {u}: exit {r.returncode}: {r.stderr}")
            if self.dc.count(u) != 0:
                raise RuntimeError(f"run {u}: mail left on the server")
        return sum(times), times

    def daemon(self, port: int) -> tuple[float, list[float]]:
        self.load_mail(self.users)
        cfg = self.config(self.work / "daemon", port)
        # the state database exists before the daemon starts, as it does
        # after the first day (and the first round on a brand-new one can
        # trip over "database is locked": tests/integration/test_daemon.py)
        subprocess.run([self.popsift, "-f", str(cfg), "status"], capture_output=True, check=True)
        done: dict[str, float] = {}
        secs: dict[str, float] = {}
        errors: list[str] = []
        all_done = threading.Event()
        t0 = time.monotonic()
        p = subprocess.Popen([self.popsift, "-f", str(cfg), "daemon"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)

        def read():
            for line in p.stderr:
                m = SUMMARY.match(line.strip())
                if m and m.group(1) in self.users:
                    done[m.group(1)] = time.monotonic()
                    secs[m.group(1)] = float(m.group(4))
                    if int(m.group(3)) != self.args.messages:
                        errors.append(line.strip())
                    if len(done) == len(self.users):
                        all_done.set()
                elif not line.startswith(("popsift: daemon", "popsift: usage")):
                    errors.append(line.strip())

        th = threading.Thread(target=read, daemon=True)
        th.start()
        ok = all_done.wait(timeout=600)
        wall = (max(done.values()) - t0) if done else float("nan")
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        th.join(timeout=5)
        if not ok or errors or rc != 0:
            raise RuntimeError(f"daemon round: {len(done)}/{len(self.users)} accounts done, "
                               f"exit {rc}, errors: {errors[:5]}")
        left = sum(self.dc.count(u) for u in self.users)
        if left:
            raise RuntimeError(f"daemon round: {left} messages left on the server")
        return wall, list(secs.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("round", "scale", "both"), default="both")
    ap.add_argument("--scale-accounts", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--scale-parallel", type=int, default=32)
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--delay-ms", default="0,10")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/daemon.py: run as root (it starts a Dovecot)")
    if args.mode in ("scale", "both"):
        scale(args)
    if args.mode in ("round", "both"):
        round_bench(args)


def round_bench(args):
    delays = [float(x) for x in args.delay_ms.split(",") if x.strip()]

    b = Bench(args)
    rows = []
    try:
        for delay in delays:
            port = b.start_proxy(delay)
            sums, walls, per_single, per_daemon = [], [], [], []
            for _ in range(args.runs):
                s, st = b.single(port)
                w, dt = b.daemon(port)
                sums.append(s)
                walls.append(w)
                per_single += st
                per_daemon += dt
            rows.append((delay, statistics.median(sums), statistics.median(walls),
                         statistics.median(per_single), statistics.median(per_daemon)))
            b.stop_proxy()
    finally:
        b.close()

    kb = args.messages * args.size / 1000
    print(f"popsift daemon: {args.accounts} accounts on one Dovecot, max_parallel "
          f"{args.parallel}, {args.messages} messages x {args.size // 1000} KB "
          f"(~{kb:.0f} KB) per account, POP3S, {os.cpu_count()} CPUs, median of {args.runs}")
    print(f"{'RTT':>8}  {'sum of single runs':>18}  {'daemon round':>12}  {'speedup':>7}"
          f"  {'median single run':>17}  {'median account in daemon':>24}")
    for delay, s, w, ps, pd in rows:
        rtt = "loopback" if delay <= 0 else f"{2 * delay:.0f} ms"
        print(f"{rtt:>8}  {s:>16.2f} s  {w:>10.2f} s  {s / w:>6.1f}x  {ps:>15.3f} s"
              f"  {pd:>22.3f} s")


# ---------------------------------------------------------------------------
# scale: 1,000 accounts in the daemon


USAGE = re.compile(r"^popsift: usage: (\d+) polls \((\d+) on schedule: started ([\d.-]+) s late "
                   r"at most, ([\d.-]+) s on average\), CPU ([\d.]+) s in the daemon and "
                   r"([\d.]+) s in its polls, peak RSS (\d+) KB in the daemon and (\d+) KB")


# -v also logs each session's dialogue ("ACCOUNT: C: ...", "S:"): not errors
PROTO = re.compile(r"^\S+: [CS*]: ")


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children) CPU seconds of pid, from /proc/PID/stat."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return (int(f[11]) + int(f[12])) / hz, (int(f[13]) + int(f[14])) / hz


def tree_cpu(pid: int) -> float:
    """CPU seconds of pid, its reaped children and its live descendants."""
    try:
        own, kids = proc_cpu(pid)
        total = own + kids
        for t in Path(f"/proc/{pid}/task").iterdir():
            for c in (t / "children").read_text().split():
                total += tree_cpu(int(c))
    except (OSError, ValueError, IndexError):
        return 0.0
    return total


def vm_hwm(pid: int) -> int:
    """Peak RSS in KB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class Scale:
    def __init__(self, args):
        self.args = args
        self.popsift = str(pt.popsift_path())
        self.users = [f"s{i:04d}" for i in range(args.scale_accounts)]
        self.dc = pt.Dovecot(
            users={u: "secret" for u in self.users},
            extra_conf="default_process_limit = 400\ndefault_client_limit = 4000\n"
                       "service pop3-login {\n  service_count = 0\n  process_min_avail = 2\n}\n")
        self.work = Path(tempfile.mkdtemp(prefix="popsift-bench-scale-"))
        self.lines: list[tuple[float, str]] = []

    def close(self):
        self.dc.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def config(self) -> Path:
        d = self.work
        text = (f"defaults\nstate {d}/state.db\nmax_parallel {self.args.scale_parallel}\n"
                f"interval {self.args.interval}\ntimeout 60\n\n")
        for u in self.users:
            text += pt.account_config(self.dc, u, name=u, deliver=f"mbox {d}/mail.mbox") + "\n"
        return pt.write_config(d / "config", text)

    def read(self, stream):
        for line in stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def run(self) -> dict:
        cfg = self.config()
        subprocess.run([self.popsift, "-f", str(cfg), "status"], capture_output=True, check=True)
        dc0 = tree_cpu(self.dc.proc.pid)
        t0 = time.monotonic()
        # -v: the daemon logs an empty poll only then, and they are what is counted
        p = subprocess.Popen([self.popsift, "-v", "-f", str(cfg), "daemon"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        th = threading.Thread(target=self.read, args=(p.stderr,), daemon=True)
        th.start()
        kid_hwm = 0
        end = t0 + self.args.minutes * 60
        while time.monotonic() < end and p.poll() is None:
            # a poll lives tens of ms: sampling sees some, a lower bound
            for task in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split():
                with contextlib.suppress(OSError, ValueError):
                    kid_hwm = max(kid_hwm, vm_hwm(int(task)))
            time.sleep(0.05)
        own, kids = proc_cpu(p.pid)
        self.dovecot_cpu = tree_cpu(self.dc.proc.pid) - dc0
        hwm = vm_hwm(p.pid)
        wall = time.monotonic() - t0
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        th.join(timeout=10)
        return self.summarise(t0, wall, own, kids, hwm, kid_hwm, rc)

    def summarise(self, t0, wall, own, kids, hwm, kid_hwm, rc) -> dict:
        polls: dict[str, list[float]] = {u: [] for u in self.users}
        usage, errors = None, []
        for t, line in self.lines:
            m = SUMMARY.match(line)
            if m and m.group(1) in polls:
                polls[m.group(1)].append(t - t0)
            elif (m := USAGE.match(line)):
                usage = m
            elif not line.startswith("popsift: ") and not PROTO.match(line):
                errors.append(line)
        n = sum(len(v) for v in polls.values())
        iv = self.args.interval
        gaps = [b - a for v in polls.values() for a, b in zip(v, v[1:])]
        # the first poll of every account is due at once: how long that round took
        first = max((v[0] for v in polls.values() if v), default=float("nan"))
        full = int(wall // (iv * 1.1))   # whole intervals (+10 %) in the run
        return {
            "rc": rc, "wall": wall, "polls": n, "errors": errors,
            "min_polls": min(len(v) for v in polls.values()),
            "max_polls": max(len(v) for v in polls.values()),
            "expected_min": full,
            "first_round": first,
            "max_lag": float(usage.group(3)) if usage else float("nan"),
            "mean_lag": float(usage.group(4)) if usage else float("nan"),
            "max_gap": max(gaps, default=float("nan")),
            "cpu_daemon": own, "cpu_polls": kids,
            "cpu_per_poll_ms": (own + kids) / n * 1000 if n else float("nan"),
            "dovecot_per_poll_ms": self.dovecot_cpu / n * 1000 if n else float("nan"),
            "rss_daemon_kb": hwm,
            "rss_poll_kb": int(usage.group(8)) if usage else None,
            "rss_poll_sampled_kb": kid_hwm,
        }


def load_note() -> str:
    with contextlib.suppress(OSError):
        return "load average before the run " + Path("/proc/loadavg").read_text().split(" ", 3)[0] \
            + " (other jobs share the machine)"
    return ""


def scale(args):
    note = load_note()
    s = Scale(args)
    try:
        r = s.run()
    finally:
        s.close()
    iv = args.interval
    print(f"popsift daemon: {args.scale_accounts} accounts, interval {iv} s, "
          f"{args.minutes:g} min, max_parallel {args.scale_parallel}, POP3S with the "
          f"certificate checked, nothing new; {os.cpu_count()} CPUs; {note}")
    ok = r["min_polls"] >= r["expected_min"] and r["max_gap"] <= iv * 1.1
    print(f"  polls                {r['polls']} in {r['wall']:.0f} s "
          f"({r['polls'] / r['wall']:.1f}/s); per account {r['min_polls']} to "
          f"{r['max_polls']} (at least {r['expected_min']} wanted)")
    print(f"  longest gap          {r['max_gap']:.1f} s between two polls of one account "
          f"(interval +10 % = {iv * 1.1:.0f} s)  {'OK' if ok else 'MISSED'}")
    print(f"  lag after due time   max {r['max_lag']:.2f} s, mean {r['mean_lag']:.3f} s "
          f"(polls on schedule; the first round, all due at once, took "
          f"{r['first_round']:.1f} s)")
    print(f"  CPU per poll         {r['cpu_per_poll_ms']:.1f} ms (daemon {r['cpu_daemon']:.2f} s"
          f" + polls {r['cpu_polls']:.2f} s)")
    print(f"  Dovecot's CPU        {r['dovecot_per_poll_ms']:.1f} ms per poll (the server side, "
          f"which in real life runs elsewhere); popsift + Dovecot need "
          f"{(r['cpu_per_poll_ms'] + r['dovecot_per_poll_ms']) * args.scale_accounts / iv / 1000:.2f}"
          f" CPUs for {args.scale_accounts} polls per {iv} s")
    rp = f"{r['rss_poll_kb'] / 1024:.1f} MB" if r["rss_poll_kb"] else "n/a"
    print(f"  peak RSS             daemon {r['rss_daemon_kb'] / 1024:.1f} MB, a poll {rp} "
          f"(sampled: {r['rss_poll_sampled_kb'] / 1024:.1f} MB)")
    if r["errors"] or r["rc"] != 0:
        print(f"  daemon exit {r['rc']}; {len(r['errors'])} other lines, first: "
              f"{r['errors'][:3]}")


if __name__ == "__main__":
    main()
