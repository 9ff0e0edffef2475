#!/usr/bin/python3
"""spamc.py — N messages from Dovecot's POP3 through SpamAssassin (spamd
already up, started here before the clock runs) into an mbox, one run each:

    popsift, filter_parallel 1   rules `match all filter spamc ...`: one
                                 message at a time, as procmail does
    popsift, filter_parallel P   the same rules, P messages at once (the
                                 default, 4): spamd's children share them
    fetchmail+procmail           fetchmail's mda "procmail -f %F -m RC", RC
                                 runs `:0fw | spamc ...` then appends to an mbox

spamd runs with --max-children at least P.  spamd's scan is CPU work:
several at once pays on as many cores as there are children, and not
beyond; the machine's load makes single runs noisy (say so with the
figures).  Needs root (Dovecot).  Environment: BENCH_N (1000), BENCH_KB
(2), BENCH_PARALLEL (4), POPSIFT (./popsift).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "lib"))
import popsift_test as pt  # noqa: E402
from spamd import Spamd  # noqa: E402

N = int(os.environ.get("BENCH_N", "1000"))
KB = int(os.environ.get("BENCH_KB", "2"))
POPSIFT = os.environ.get("POPSIFT", str(ROOT / "popsift"))
PARALLEL = int(os.environ.get("BENCH_PARALLEL", "4"))
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def message(i: int) -> bytes:
    body = b"".join(b"line %d of message %d, some text to fill it up\n" % (k, i)
                    for k in range(KB * 1024 // 48))
    if i % 10 == 0:
        body += GTUBE + b"\n"
    return (f"Return-Path: <bench@example.org>\nFrom: bench@example.org\n"
            f"To: bob@example.org\nSubject: bench {i}\nDate: Wed, 02 Dec 2026 10:00:00 +0000\n"
            f"Message-ID: <bench{i}@popsift.bench>\n\n").encode() + body


def spam_count(mbox: Path) -> tuple[int, int]:
    msgs = pt.mbox_messages(mbox)
    return len(msgs), sum(b"X-Spam-Flag: YES" in m for m in msgs)


def popsift(dc, tmp: Path, spamc: str, parallel: int) -> float:
    out = tmp / f"popsift-{parallel}.mbox"
    rules = tmp / "spamc.rules"
    rules.write_text(f"match all filter {spamc}\n")
    cfg = pt.write_config(tmp / "config", pt.account_config(
        dc, "alice", tls="off", deliver=f"mbox {out}", rules=rules,
        state=tmp / f"state-{parallel}.db", received_header="no",
        filter_parallel=str(parallel)), 0o600)
    t = time.monotonic()
    r = subprocess.run([POPSIFT, "-f", str(cfg), "run"], capture_output=True, text=True)
    t = time.monotonic() - t
    assert r.returncode == 0, r.stderr[-2000:]
    assert spam_count(out) == (N, (N + 9) // 10), spam_count(out)
    return t


def fetchmail(dc, tmp: Path, spamc: str) -> float:
    out = tmp / "fetchmail.mbox"
    rc = tmp / "procmailrc"
    rc.write_text(f"SHELL=/bin/sh\nLOGFILE={tmp}/procmail.log\n"
                  f":0fw\n| {spamc}\n\n:0:\n{out}\n")
    fm = pt.write_config(tmp / "fetchmailrc", (
        "set no syslog\nset no bouncemail\n"
        f"poll 127.0.0.1 service {dc.port} protocol pop3 uidl auth password:\n"
        f'  user "alice" there with password "secret" is "root" here\n'
        f"  sslproto '' mda \"procmail -f %F -m {rc}\"\n"), 0o600)
    t = time.monotonic()
    r = subprocess.run(["fetchmail", "-f", str(fm), "--idfile", str(tmp / "ids"),
                        "--pidfile", str(tmp / "fm.pid"), "-N", "-s"],
                       capture_output=True, text=True, env={**os.environ, "FETCHMAILHOME": str(tmp)})
    t = time.monotonic() - t
    assert r.returncode == 0, r.stderr[-2000:]
    assert spam_count(out) == (N, (N + 9) // 10), spam_count(out)
    return t


def main() -> None:
    children = max(PARALLEL, 4)
    runs = (("popsift, filter_parallel 1", lambda dc, tmp, c: popsift(dc, tmp, c, 1)),
            (f"popsift, filter_parallel {PARALLEL}",
             lambda dc, tmp, c: popsift(dc, tmp, c, PARALLEL)),
            ("fetchmail + procmail + spamc", fetchmail))
    with Spamd(children=children) as sd, pt.Dovecot(users={"alice": "secret"}) as dc:
        tmp = dc.dir / "bench-spamc"
        tmp.mkdir()
        spamc = "spamc -x " + " ".join(sd.spamc_args)
        rows = []
        for name, fn in runs:
            dc.clear("alice")
            dc.add_messages("alice", [message(i) for i in range(N)])
            rows.append((name, fn(dc, tmp, spamc)))
    load = os.getloadavg()[0]
    print(f"{N} messages of ~{KB} KB through spamc (spamd up, --max-children={children}), "
          f"one run each; {os.cpu_count()} CPUs, load {load:.1f} at the end")
    print(f"  {'':30s} {'seconds':>8s} {'msg/s':>8s} {'vs fetchmail':>13s}")
    base = rows[-1][1]
    for name, t in rows:
        print(f"  {name:30s} {t:8.2f} {N / t:8.1f} {base / t:12.2f}x")


if __name__ == "__main__":
    main()
