#!/usr/bin/python3
"""imap.py — appending N messages into Dovecot IMAP over a 20 ms round trip
(issue 14's measurement; `make bench` runs it as scenario 8; alone:
`/usr/bin/python3 bench/imap.py`, as root).

One throwaway Dovecot with POP3 and IMAP (tests/lib/imapd.py) on
127.0.0.1; its IMAP port behind bench/delayproxy.py (10 ms each way). The
POP3 side stays on loopback: what is measured is the IMAP side, where a
far server (Gmail from Europe, Outlook from China) costs round trips.

    popsift     `deliver imap`: the N messages fetched from POP3 and appended
                (LITERAL+, many APPENDs in flight), one run, fresh state
    popsift -L  the same with Dovecot's LITERAL+ switched off (a server that
                wants each literal's continuation: one more round trip each)
    curl -T     libcurl's IMAP upload, every message in one curl process
                (`curl -T "{f1,f2,...}" imap://.../INBOX`: one connection,
                each upload waits for its continuation and its tagged OK;
                marks every message \\Seen)
    curl each   one `curl -T FILE` per message (BENCH_IMAP_EACH messages,
                scaled to N): what a cron script around curl does

Prints a table: median seconds, messages/s, round trips per message
(seconds / N / RTT) and the ratio to popsift; with --json the same as JSON
on stdout.  Environment: BENCH_IMAP_N (1000), BENCH_RUNS (3), BENCH_KB (3),
BENCH_IMAP_EACH (50), POPSIFT (./popsift).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "lib"))
import popsift_test as pt  # noqa: E402
from imapd import DovecotImap  # noqa: E402

N = int(os.environ.get("BENCH_IMAP_N", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
KB = float(os.environ.get("BENCH_KB", "3"))
EACH = int(os.environ.get("BENCH_IMAP_EACH", "50"))
RTT = 0.020
PASSWORD = "secret"


def log(msg: str) -> None:
    print(f"bench/imap: {msg}", file=sys.stderr, flush=True)


def proxy(port: int) -> tuple[subprocess.Popen, int]:
    pport = pt.free_port()
    p = subprocess.Popen(["/usr/bin/python3", str(ROOT / "bench/delayproxy.py"), str(pport),
                          str(port), str(int(RTT * 1000 / 2))], stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "ready":
        raise SystemExit("delayproxy did not start")
    return p, pport


def clear_imap(dc) -> None:
    m = dc.imap("bob")
    typ, data = m.select("INBOX")
    if int(data[0]) > 0:
        m.store("1:*", "+FLAGS", "\\Deleted")
        m.expunge()
    m.logout()


def imap_count(dc) -> int:
    m = dc.imap("bob")
    typ, data = m.select("INBOX", readonly=True)
    m.logout()
    return int(data[0])


def popsift_run(dc, msgs, tmp, pport) -> float:
    dc.clear("alice")
    dc.add_messages("alice", msgs)
    clear_imap(dc)
    for p in tmp.glob("state.db*"):
        p.unlink()
    keys = dict(deliver="imap", state=tmp / "state.db", imap_host="127.0.0.1",
                imap_port=pport, imap_tls="off", imap_user="bob", imap_password=PASSWORD)
    cfg = pt.write_config(tmp / "config", pt.account_config(dc, "alice", **keys))
    t0 = time.monotonic()
    r = pt.run_popsift(["-f", cfg, "-q", "run"], timeout=900)
    dt = time.monotonic() - t0
    got = imap_count(dc)
    if r.returncode != 0 or got != len(msgs):
        raise SystemExit(f"popsift run failed ({r.returncode}, {got} appended): {r.stderr[-2000:]}")
    return dt


def curl_run(dc, files, pport, each: bool) -> float:
    clear_imap(dc)
    url = f"imap://127.0.0.1:{pport}/INBOX"
    base = ["curl", "-s", "-S", "-u", f"bob:{PASSWORD}"]
    t0 = time.monotonic()
    if each:
        for f in files:
            subprocess.run(base + ["-T", str(f), url], check=True)
    else:
        subprocess.run(base + ["-T", "{" + ",".join(map(str, files)) + "}", url], check=True)
    dt = time.monotonic() - t0
    if imap_count(dc) != len(files):
        raise SystemExit(f"curl appended {imap_count(dc)} of {len(files)}")
    return dt


def measure(name, fn, n) -> dict:
    times = []
    for _ in range(RUNS):
        times.append(fn())
        log(f"{name}: {times[-1]:.2f} s")
    med = statistics.median(times)
    return {"tool": name, "n": n, "median": med, "min": min(times), "runs": times,
            "per_msg": med / n, "rtts_per_msg": med / n / RTT}


def bench(dc, tmp, msgs) -> list[dict]:
    files = []
    for i, m in enumerate(msgs):
        f = tmp / f"m{i:05d}.eml"
        f.write_bytes(m.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        files.append(f)
    px, pport = proxy(dc.imap_port)
    try:
        rows = [measure("popsift", lambda: popsift_run(dc, msgs, tmp, pport), len(msgs)),
                measure("curl -T (one process)", lambda: curl_run(dc, files, pport, False),
                        len(msgs))]
        each = files[:EACH]
        rows.append(measure(f"curl -T (a process each, {len(each)} msgs)",
                            lambda: curl_run(dc, each, pport, True), len(each)))
    finally:
        px.terminate()
        px.wait(timeout=30)
    return rows


def bench_no_literal_plus(tmp, msgs) -> dict:
    with DovecotImap(users={"alice": PASSWORD, "bob": PASSWORD},
                     imap_capability="IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT "
                                     "NAMESPACE UIDPLUS MULTIAPPEND") as dc:
        px, pport = proxy(dc.imap_port)
        try:
            return measure("popsift, server without LITERAL+",
                           lambda: popsift_run(dc, msgs, tmp, pport), len(msgs))
        finally:
            px.terminate()
            px.wait(timeout=30)


def main() -> int:
    gen = pt.load_genmail()
    msgs = gen.generate(N, seed=8, size_kb=KB)
    with DovecotImap(users={"alice": PASSWORD, "bob": PASSWORD}) as dc, \
            tempfile.TemporaryDirectory(prefix="popsift-bench-imap-") as t:
        tmp = Path(t)
        rows = bench(dc, tmp, msgs)
    with tempfile.TemporaryDirectory(prefix="popsift-bench-imap-") as t:
        rows.insert(1, bench_no_literal_plus(Path(t), msgs))
    ref = rows[0]["per_msg"]
    for r in rows:
        r["x_popsift"] = r["per_msg"] / ref
    if "--json" in sys.argv:
        print(json.dumps({"n": N, "rtt_ms": RTT * 1000, "kb": KB, "rows": rows}))
        return 0
    print(f"{N} messages (~{KB:g} KB) appended into Dovecot IMAP over a {RTT * 1000:.0f} ms "
          f"round trip, {RUNS} runs each, popsift {pt.popsift_path()}")
    print(f"{'tool':44} {'median s':>9} {'msg/s':>7} {'RTT/msg':>8} {'x popsift':>9}")
    for r in rows:
        print(f"{r['tool']:44} {r['median']:9.2f} {r['n'] / r['median']:7.0f} "
              f"{r['rtts_per_msg']:8.2f} {r['x_popsift']:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
