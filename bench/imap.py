#!/usr/bin/python3
"""imap.py — appending N messages over IMAP into Dovecot across a 20 ms
round trip (bench/delayproxy.py, 10 ms each way), popsift against one
libcurl upload per message (`curl -T`, what a script around curl or a
fetcher without IMAP support would do).

    popsift LITERAL+   deliver imap, Dovecot offering LITERAL+ (APPENDs in flight)
    popsift sync       the same with Dovecot's imap_capability without
                       LITERAL+ (each APPEND waits for "+", as at Gmail)
    curl -T            one `curl -T FILE imap://.../Bench` per message
                       (BENCH_CURL_N of them, the time scaled to N)

Prints seconds, messages/s and round trips per message (time / N / RTT:
everything included, the POP3 download and Dovecot's work too).  Needs
root (Dovecot).  Environment: BENCH_N (1000), BENCH_CURL_N (100),
BENCH_KB (3), BENCH_RTT_MS (20), POPSIFT (./popsift).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "lib"))
import popsift_test as pt  # noqa: E402
from imapd import DovecotImap  # noqa: E402

N = int(os.environ.get("BENCH_N", "1000"))
CURL_N = int(os.environ.get("BENCH_CURL_N", "100"))
KB = int(os.environ.get("BENCH_KB", "3"))
RTT = float(os.environ.get("BENCH_RTT_MS", "20")) / 1000
POPSIFT = os.environ.get("POPSIFT", str(ROOT / "popsift"))


def message(i: int) -> bytes:
    body = b"".join(b"line %d of message %d, some text to fill it up\n" % (k, i)
                    for k in range(KB * 1024 // 48))
    return (f"From: bench@example.org\nTo: bob@example.org\nSubject: bench {i}\n"
            f"Message-ID: <bench{i}@popsift.bench>\n"
            f"Date: Fri, 01 Mar 2024 09:00:00 +0000\n\n").encode() + body


def proxy(target: int) -> tuple[subprocess.Popen, int]:
    port = pt.free_port()
    p = subprocess.Popen(["/usr/bin/python3", str(ROOT / "bench/delayproxy.py"), str(port),
                          str(target), str(RTT * 1000 / 2)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p, port


def count(dc: DovecotImap) -> int:
    return dc.imap_count("bob", "Bench")


def popsift_run(caps: str | None) -> float:
    tmp = Path(tempfile.mkdtemp())
    with DovecotImap(users={"alice": "secret", "bob": "secret"}, imap_capability=caps) as dc:
        dc.add_messages("alice", [message(i) for i in range(N)])
        px, port = proxy(dc.imap_port)
        try:
            cfg = pt.write_config(tmp / "config", pt.account_config(
                dc, "alice", deliver="imap Bench", state=tmp / "state.db",
                imap_host="127.0.0.1", imap_port=port, imap_tls="off", imap_user="bob",
                imap_password="secret", imap_create="yes"), 0o600)
            t = time.monotonic()
            r = subprocess.run([POPSIFT, "-f", str(cfg), "run"], capture_output=True, text=True)
            t = time.monotonic() - t
        finally:
            px.terminate()
            px.wait()
        assert r.returncode == 0 and count(dc) == N, r.stderr[-2000:]
    return t


def curl_run() -> float:
    tmp = Path(tempfile.mkdtemp())
    with DovecotImap(users={"bob": "secret"}) as dc:
        m = dc.imap("bob")
        m.create("Bench")
        m.logout()
        px, port = proxy(dc.imap_port)
        files = []
        for i in range(CURL_N):
            f = tmp / f"m{i}"
            f.write_bytes(message(i).replace(b"\n", b"\r\n"))
            files.append(f)
        try:
            t = time.monotonic()
            for f in files:
                subprocess.run(["curl", "-s", "-S", "-u", "bob:secret", "-T", str(f),
                                f"imap://127.0.0.1:{port}/Bench"], check=True)
            t = time.monotonic() - t
        finally:
            px.terminate()
            px.wait()
        assert count(dc) == CURL_N
    return t * N / CURL_N


def main() -> None:
    rows = [("popsift LITERAL+", popsift_run(None)),
            ("popsift sync", popsift_run("IMAP4rev1 UIDPLUS MULTIAPPEND")),
            (f"curl -T (x{N // CURL_N})", curl_run())]
    print(f"{N} messages of {KB} KB appended into Dovecot IMAP over a {RTT * 1000:.0f} ms "
          f"round trip")
    print(f"{'':20} {'seconds':>8} {'msg/s':>8} {'RTT/msg':>8} {'vs curl':>8}")
    curl = rows[-1][1]
    for name, t in rows:
        print(f"{name:20} {t:8.2f} {N / t:8.0f} {t / N / RTT:8.2f} {curl / t:7.1f}x")


if __name__ == "__main__":
    main()
