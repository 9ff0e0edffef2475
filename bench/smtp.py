#!/usr/bin/python3
"""smtp.py — forwarding N messages over SMTP in one run vs delivering them
to an mbox (issue 4's measurement; bench/smtp.sh runs it).

For each target, RUNS times: a fresh state database, the N messages put
back into a throwaway Dovecot, one `popsift run`, wall-clock time.

    mbox       deliver mbox FILE
    smtp-sink  deliver forward, to bench/smtp-sink.c (C, answers at once,
               keeps nothing): what forwarding costs popsift itself
    aiosmtpd   deliver forward, to tests/lib/smtpd.py (Python asyncio, a
               separate process, keeps the messages in memory)
    exim4      deliver forward, to exim4 on a loopback port (tests/lib/exim.py:
               spool, fsync, local delivery to a Maildir)
    20 ms RTT  deliver forward of the first BENCH_RTT_N messages to the
               smtp-sink through bench/delayproxy.py (10 ms each way): a
               submission server far away, where round trips are the cost;
               the last column gives round trips per message

Prints a table (median and min seconds, messages/s, ratio to mbox) and the
SMTP connections the servers saw per run.  Environment: BENCH_N (1000),
BENCH_RUNS (5), BENCH_KB (3, message size), BENCH_RTT_N (200), POPSIFT
(./popsift).
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "lib"))
import popsift_test as pt  # noqa: E402
from exim import Exim, exim_binary  # noqa: E402

N = int(os.environ.get("BENCH_N", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
KB = float(os.environ.get("BENCH_KB", "3"))
RTT_N = int(os.environ.get("BENCH_RTT_N", "200"))
RTT = 0.020


def refill(dc, msgs):
    dc.clear("alice")
    dc.add_messages("alice", msgs)


def one_run(dc, msgs, tmp, deliver, extra=None) -> float:
    refill(dc, msgs)
    state = tmp / "state.db"
    for p in tmp.glob("state.db*"):
        p.unlink()
    keys = dict(deliver=deliver, state=state, **(extra or {}))
    cfg = pt.write_config(tmp / "config", pt.account_config(dc, "alice", **keys))
    t0 = time.monotonic()
    r = pt.run_popsift(["-f", cfg, "-q", "run"], timeout=600)
    dt = time.monotonic() - t0
    if r.returncode != 0 or dc.count("alice") != 0:
        raise SystemExit(f"run failed ({r.returncode}): {r.stderr[-2000:]}")
    return dt


def sink(cmd: list) -> subprocess.Popen:
    """Start a server that prints "ready" once it listens."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "ready":
        raise SystemExit(f"{cmd[0]} did not start")
    return p


def sink_stats(p: subprocess.Popen) -> dict:
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out)}


def bench_mbox(dc, msgs, tmp):
    times = []
    for _ in range(RUNS):
        (tmp / "out.mbox").unlink(missing_ok=True)
        times.append(one_run(dc, msgs, tmp, f"mbox {tmp / 'out.mbox'}"))
    return times, "-"


def bench_server(dc, msgs, tmp, cmd):
    times, conns = [], []
    for _ in range(RUNS):
        port = pt.free_port()
        p = sink([*cmd, str(port)])
        try:
            times.append(one_run(dc, msgs, tmp, "forward bob@example.org",
                                 {"smtp_host": "127.0.0.1", "smtp_port": port}))
        finally:
            st = sink_stats(p)
        if st.get("messages") != len(msgs):
            raise SystemExit(f"{cmd[-1]} got {st} for {len(msgs)} messages")
        conns.append(st["connections"])
    return times, "/".join(map(str, conns))


def sink_exe(tmp) -> Path:
    exe = tmp / "smtp-sink"
    if not exe.exists():
        subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench/smtp-sink.c")], check=True)
    return exe


def bench_far_sink(dc, msgs, tmp):
    """The sink behind a 20 ms round trip: what one message costs in round trips."""
    times = []
    for _ in range(RUNS):
        port, pport = pt.free_port(), pt.free_port()
        p = sink([str(sink_exe(tmp)), str(port)])
        proxy = sink(["/usr/bin/python3", str(ROOT / "bench/delayproxy.py"), str(pport), str(port),
                      str(int(RTT * 1000 / 2))])
        try:
            times.append(one_run(dc, msgs, tmp, "forward bob@example.org",
                                 {"smtp_host": "127.0.0.1", "smtp_port": pport}))
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)
            st = sink_stats(p)
        if st.get("messages") != len(msgs):
            raise SystemExit(f"far sink got {st} for {len(msgs)} messages")
    return times, "1"


def bench_aiosmtpd(dc, msgs, tmp):
    return bench_server(dc, msgs, tmp, ["/usr/bin/python3", str(ROOT / "tests/lib/smtpd.py"),
                                        "--port"])


def bench_sink(dc, msgs, tmp):
    return bench_server(dc, msgs, tmp, [str(sink_exe(tmp))])


def bench_exim(dc, msgs, tmp):
    times, conns = [], []
    for _ in range(RUNS):
        with Exim(users=("bob",)) as mta:
            times.append(one_run(dc, msgs, tmp, "forward bob@example.org",
                                 {"smtp_host": "127.0.0.1", "smtp_port": mta.port}))
            got = mta.wait_for("bob", len(msgs), timeout=120)
            if len(got) != len(msgs):
                raise SystemExit(f"exim delivered {len(got)} of {len(msgs)}")
            log = (mta.dir / "log" / "mainlog").read_text()
            conns.append(log.count("TCP/IP connection count") - 1)   # minus the probe
    return times, "/".join(map(str, conns))


def main() -> int:
    gen = pt.load_genmail()
    msgs = gen.generate(N, seed=7, size_kb=KB)
    mb = sum(map(len, msgs)) / 1e6
    rows = []
    with pt.Dovecot(users={"alice": "secret"}) as dc, \
            tempfile.TemporaryDirectory(prefix="popsift-bench-smtp-") as t:
        tmp = Path(t)
        targets = [("mbox", bench_mbox), ("forward → smtp-sink", bench_sink),
                   ("forward → aiosmtpd", bench_aiosmtpd)]
        if exim_binary():
            targets.append(("forward → exim4", bench_exim))
        for name, fn in targets:
            times, conns = fn(dc, msgs, tmp)
            rows.append((name, statistics.median(times), min(times), conns))
            print(f"  {name}: {' '.join(f'{x:.2f}' for x in times)} s", file=sys.stderr)
        far = []
        if RTT_N > 0:
            far, _ = bench_far_sink(dc, msgs[:RTT_N], tmp)
            print(f"  far sink: {' '.join(f'{x:.2f}' for x in far)} s", file=sys.stderr)
    base = rows[0][1]
    print(f"{N} messages ({mb:.1f} MB), {RUNS} runs each, popsift {pt.popsift_path()}")
    print(f"{'target':<22} {'median s':>9} {'min s':>7} {'msg/s':>7} {'x mbox':>7}  SMTP connections per run")
    for name, med, lo, conns in rows:
        print(f"{name:<22} {med:9.2f} {lo:7.2f} {N / med:7.0f} {med / base:7.2f}  {conns}")
    if far:
        med = statistics.median(far)
        print(f"\nforward of {RTT_N} messages to smtp-sink over a {RTT * 1000:.0f} ms round trip "
              f"(bench/delayproxy.py): median {med:.2f} s, min {min(far):.2f} s = "
              f"{med / RTT_N * 1000:.1f} ms a message = {med / RTT_N / RTT:.2f} round trips "
              f"a message (the POP3 side, on loopback, overlaps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
