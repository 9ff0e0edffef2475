#!/usr/bin/python3
"""daemon.py — issue 5's scheduler benchmark: 50 accounts on one Dovecot,
one round of `popsift daemon` with max_parallel 8, against the sum of the
times of the same 50 accounts fetched one at a time (`popsift run ACCOUNT`).

    /usr/bin/python3 bench/daemon.py [--accounts 50] [--parallel 8]
        [--messages 20] [--size 20000] [--delay-ms 0,10] [--runs 3]

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

Prints one table; --runs repeats both and reports the median.
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
                elif not line.startswith("popsift: daemon"):
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
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--delay-ms", default="0,10")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/daemon.py: run as root (it starts a Dovecot)")
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


if __name__ == "__main__":
    main()
