#!/usr/bin/python3
"""Time and peak memory of one `popsift run` against a POP3 server that
lists N messages (issue 13: a big listing must cost linear time and
bounded memory per message).

    /usr/bin/python3 bench/listing.py [--n 1000000] [--case seen|new] [--popsift ./popsift]

seen: every message was delivered before and is kept (keep yes,
      fast_uidl no): each poll of a big kept mailbox lists and diffs them
      all — the case a daemon pays every interval.
new:  none was seen; max_messages 1 fetches one, so the run costs the
      UIDL listing, the diff and a full LIST of N.

The server is tests/lib/fakepop.py; the state database of the seen case
is filled with N delivered rows directly.  Prints wall seconds and peak
RSS from /usr/bin/time -v.
"""

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "lib"))
from fakepop import FakePop  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--case", choices=["seen", "new"], default="seen")
    ap.add_argument("--popsift", default=str(ROOT / "popsift"))
    o = ap.parse_args()
    msg = b"From: a@example.org\nSubject: one of many\n\nbody\n"
    uidls = [f"{k:08x}{k * 2654435761 % 2**32:08x}" for k in range(1, o.n + 1)]
    d = Path(tempfile.mkdtemp(prefix="popsift-listing-"))
    with FakePop([msg] * o.n, uidls) as srv:
        cfg = d / "config"
        cfg.write_text(f"defaults\nstate {d / 'state.db'}\n\naccount big\nhost 127.0.0.1\n"
                       f"port {srv.port}\nuser alice\npassword secret\ntls off\nauth user\n"
                       f"keep yes\nfast_uidl no\ntimeout 120\nmax_messages 1\n"
                       f"deliver mbox {d / 'inbox.mbox'}\n")
        cfg.chmod(0o600)
        # an empty run creates the schema
        subprocess.run([o.popsift, "-f", cfg, "check"], check=True, capture_output=True)
        subprocess.run([o.popsift, "-f", cfg, "status"], capture_output=True)
        if o.case == "seen":
            with sqlite3.connect(d / "state.db") as db:
                db.executemany("INSERT OR REPLACE INTO messages(account, uidl, state, first_seen,"
                               " size) VALUES('big', ?, 'delivered', 1, 60)",
                               ((u,) for u in uidls))
        t0 = time.monotonic()
        r = subprocess.run(["/usr/bin/time", "-v", o.popsift, "-f", cfg, "run"],
                           capture_output=True, text=True)
        wall = time.monotonic() - t0
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", r.stderr))
    summary = [ln for ln in r.stderr.splitlines() if ln.startswith("big:")]
    print(f"{o.n} messages, case {o.case}: exit {r.returncode}, wall {wall:.2f} s, "
          f"popsift CPU {cpu:.2f} s, peak RSS {int(rss.group(1)) / 1024:.1f} MB" if rss else r.stderr)
    print("\n".join(summary[-3:]))


if __name__ == "__main__":
    main()
