#!/usr/bin/python3
"""lmtp.py — N messages from Dovecot's POP3 into a Dovecot user's Maildir,
in one popsift run each way:

    maildir          deliver maildir into a directory on the same disk
                     (popsift writes the files itself: the floor)
    lmtp unix        deliver lmtp unix:SOCKET bob (dovecot-lmtpd)
    mda dovecot-lda  deliver mda dovecot-lda -d bob (one process a message,
                     what LMTP replaces)
    lmtp tcp+RTT     deliver lmtp 127.0.0.1:PORT bob through bench/delayproxy.py
                     (BENCH_RTT_MS round trip): seconds / N / RTT is the
                     round trips a message costs, Dovecot's work included;
                     less the unix socket run's time, the waits alone.
                     (strace: popsift writes once a message, data, end and
                     the next envelope together; Dovecot's LMTP takes ~6-10
                     ms a delivery on a small machine.)

Needs root (Dovecot).  Environment: BENCH_N (1000), BENCH_KB (1),
BENCH_RTT_MS (20), POPSIFT (./popsift).
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

N = int(os.environ.get("BENCH_N", "1000"))
KB = int(os.environ.get("BENCH_KB", "1"))
RTT = float(os.environ.get("BENCH_RTT_MS", "20")) / 1000
POPSIFT = os.environ.get("POPSIFT", str(ROOT / "popsift"))


def message(i: int) -> bytes:
    body = b"".join(b"line %d of message %d, some text to fill it up\n" % (k, i)
                    for k in range(KB * 1024 // 48))
    return (f"Return-Path: <bench@example.org>\nFrom: bench@example.org\n"
            f"To: bob@example.org\nSubject: bench {i}\n"
            f"Message-ID: <bench{i}@popsift.bench>\n\n").encode() + body


def proxy(target: int) -> tuple[subprocess.Popen, int]:
    port = pt.free_port()
    p = subprocess.Popen(["/usr/bin/python3", str(ROOT / "bench/delayproxy.py"), str(port),
                          str(target), str(RTT * 1000 / 2)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p, port


def run(dc: pt.Dovecot, tmp: Path, name: str, deliver: str, landed) -> float:
    dc.clear("alice")
    dc.clear("bob")
    dc.add_messages("alice", [message(i) for i in range(N)])
    cfg = pt.write_config(tmp / f"config-{name}", pt.account_config(
        dc, "alice", tls="off", deliver=deliver, state=tmp / f"state-{name}.db",
        received_header="no"), 0o600)
    t = time.monotonic()
    r = subprocess.run([POPSIFT, "-f", str(cfg), "run"], capture_output=True, text=True)
    t = time.monotonic() - t
    assert r.returncode == 0 and landed() == N, r.stderr[-2000:]
    return t


def main() -> None:
    with pt.Dovecot(users={"alice": "secret", "bob": "secret"}, lmtp=True) as dc:
        tmp = dc.dir / "bench"
        tmp.mkdir()
        md = tmp / "Maildir"
        lda = f"mda /usr/lib/dovecot/dovecot-lda -c {dc.conf_path} -d bob"
        rows = [("maildir", run(dc, tmp, "maildir", f"maildir {md}",
                                lambda: len(pt.maildir_files(md)))),
                ("lmtp unix", run(dc, tmp, "unix", f"lmtp unix:{dc.lmtp_socket} bob",
                                  lambda: dc.count("bob"))),
                ("mda dovecot-lda", run(dc, tmp, "lda", lda, lambda: dc.count("bob")))]
        px, port = proxy(dc.lmtp_port)
        try:
            rows.append((f"lmtp tcp+{RTT * 1000:.0f}ms", run(
                dc, tmp, "tcp", f"lmtp 127.0.0.1:{port} bob", lambda: dc.count("bob"))))
        finally:
            px.terminate()
            px.wait()
    print(f"{N} messages of {KB} KB from Dovecot POP3 into a Maildir, one run each")
    print(f"{'':20} {'seconds':>8} {'msg/s':>8} {'ms/msg':>8}")
    unix = rows[1][1]
    for name, t in rows:
        print(f"{name:20} {t:8.2f} {N / t:8.0f} {t * 1000 / N:8.2f}"
              + (f"   {t / N / RTT:.2f} RTT a message, {(t - unix) / N / RTT:.2f} beyond "
                 "Dovecot's own work (the unix socket run's time)" if "+" in name else ""))


if __name__ == "__main__":
    main()
