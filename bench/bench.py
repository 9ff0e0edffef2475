#!/usr/bin/python3
"""bench.py — popsift side by side with mpop, fetchmail and fdm (`make bench`).

Run by bench/run.sh (which installs the peers) as root, with Debian's
/usr/bin/python3 and the standard library only.  It starts a throwaway
Dovecot on 127.0.0.1 (tests/lib/popsift_test.py), generates the mail
(tests/gen-mail.py), runs every tool on the same mailbox in alternation
(A B C D A B C D ...), and writes doc/bench.md (plus doc/bench.png when
gnuplot is installed).

Scenarios (numbers as in issue 7):
  1  2000 x ~3 KB messages over loopback, fresh state
  2  the same through bench/delayproxy.py (+10 ms each way = 20 ms RTT)
  3  1000 mixed messages (~57 MB, multi-MB attachments) over POP3S
  4  a poll that finds nothing new in a mailbox of 20,000 kept messages
  5  ~10,000 messages through 17 rules: popsift filter vs fdm
  6  peak RSS fetching one 50 MB message
  7  1000 messages forwarded over SMTP vs delivered to an mbox
  8  1000 messages appended into Dovecot IMAP over a 20 ms round trip vs
     libcurl's IMAP upload (`curl -T`): bench/imap.py, run as a child
  9  an empty poll at 100 ms RTT (delayproxy.py, 50 ms each way): popsift,
     mpop and fetchmail, and the round trips it costs (time / RTT)
 10  2000 x ~3 KB messages at 100 ms RTT, fresh state: popsift vs the floor

Every tool keeps the mail on the server and writes one file: popsift, mpop
and fdm an mbox, fetchmail a BSMTP file (its `bsmtp` option: no MTA and no
process per message, its fastest local path).  The floor is bench/floor.c:
log in, send UIDL, every RETR and QUIT at once, write the stream to a file.

Environment: BENCH_RUNS (default 3) runs per tool; BENCH_ONLY="1,4" picks
scenarios (doc/bench.md is then not rewritten unless BENCH_WRITE=1);
BENCH_SLOW_LIMIT (default 30) seconds: a tool whose first run takes longer
runs once in that scenario (fetchmail and fdm at 20 ms RTT take ~85 s a
run); BENCH_KEEP=1 keeps the work directory; POPSIFT=path picks the binary.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import datetime
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests" / "lib"))

import popsift_test as pt  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SLOW_LIMIT = float(os.environ.get("BENCH_SLOW_LIMIT", "30"))
ONLY = {int(x) for x in os.environ.get("BENCH_ONLY", "").replace(",", " ").split()}
KEEP = os.environ.get("BENCH_KEEP") == "1"
WRITE_DOC = not ONLY or os.environ.get("BENCH_WRITE") == "1"
POPSIFT = str(pt.popsift_path())
PASSWORD = "secret"
MIB = 1024 * 1024

GOALS = {  # scenario -> (text, test on the measured value)
    1: ("popsift/mpop ≤ 0.5", lambda v: v <= 0.5),
    2: ("popsift/mpop ≤ 0.3", lambda v: v <= 0.3),
    3: ("popsift/mpop ≤ 0.7", lambda v: v <= 0.7),
    4: ("popsift/mpop ≤ 0.8", lambda v: v <= 0.8),
    5: ("fdm/popsift ≥ 20", lambda v: v >= 20),
    6: ("popsift peak RSS ≤ 16 MiB", lambda v: v <= 16 * 1024),
    7: ("popsift SMTP/mbox ≤ 2", lambda v: v <= 2),   # issue 4
    8: ("popsift IMAP ≤ 1.5 RTT a message, curl -T/popsift ≥ 3",   # issue 14
        lambda v: v[0] <= 1.5 and v[1] >= 3),
    9: ("≤ 3 round trips and popsift/mpop ≤ 0.55",   # issue 16
        lambda v: v[0] <= 3 and v[1] <= 0.55),
    10: ("popsift/floor ≤ 1.3", lambda v: v <= 1.3),   # issue 16
}
RTT_FAR = 0.100   # scenarios 9 and 10: seconds
FLOOR_GOAL = 2.0  # popsift within 2x of the floor (scenarios 1-4)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# running and timing one command

class Run:
    def __init__(self, secs, rss_kb, rc, out, err):
        self.secs, self.rss_kb, self.rc, self.out, self.err = secs, rss_kb, rc, out, err


def timed(cmd, env=None, cwd=None, timeout=900) -> Run:
    """Run cmd under /usr/bin/time; wall time from here, peak RSS (KB) from
    time's %M (the largest of the process and the children it waited for)."""
    fd, tf = tempfile.mkstemp(prefix="time-", dir=WORK)
    os.close(fd)
    full = ["/usr/bin/time", "-f", "%M", "-o", tf, *map(str, cmd)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(full, env=env, cwd=cwd, timeout=timeout,
                           stdin=subprocess.DEVNULL, capture_output=True)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = -9, e.stdout or b"", (e.stderr or b"") + b"\n[bench: timed out]"
    secs = time.perf_counter() - t0
    rss = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        rss = int(Path(tf).read_text().split()[-1])
    os.unlink(tf)
    return Run(secs, rss, rc, out.decode(errors="replace"), err.decode(errors="replace"))


def first_line(text: str) -> str:
    for ln in text.splitlines():
        ln = ln.strip()
        if ln and "Running as root is discouraged" not in ln:
            return ln[:160]
    return ""


def unlink(*paths) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


def mbox_count(path) -> int:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return 0
    return data.count(b"\n\nFrom ") + data.startswith(b"From ")


# --------------------------------------------------------------------------
# the tools.  Each writes its config once (setup), then per run: reset
# (fresh: state and output gone; poll: output gone, state kept), cmd, count.

class Endpoint:
    def __init__(self, port, user, tls=False, ca=None, host="127.0.0.1"):
        self.host, self.port, self.user, self.tls, self.ca = host, port, user, tls, ca


class Tool:
    key = "tool"
    label = "tool"
    ok_codes = (0,)

    def __init__(self, ep: Endpoint, tag: str, **opts):
        self.ep = ep
        self.opts = opts
        self.name()
        self.dir = WORK / f"{tag}-{self.key}"
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.env = dict(os.environ, HOME=str(self.dir), LC_ALL="C")
        self.setup()

    def name(self): ...
    def setup(self): ...
    def reset(self, fresh=True): ...
    def cmd(self) -> list: ...
    def count(self) -> int: ...


class Popsift(Tool):
    key, label = "popsift", "popsift"

    def name(self):
        if self.opts.get("forward"):
            self.key, self.label = "popsift-fwd", "popsift → SMTP"

    def setup(self):
        ep = self.ep
        self.state = self.dir / "state.db"
        self.out = self.dir / "out.mbox"
        fwd = self.opts.get("forward")
        lines = ["defaults", f"state {self.state}", "", "account bench",
                 f"host {ep.host}", f"port {ep.port}"]
        lines += ["tls on", f"tls_ca_file {ep.ca}"] if ep.tls else ["tls off"]
        lines += [f"user {ep.user}", f"password {PASSWORD}", "keep yes"]
        if self.opts.get("auth"):
            lines += [f"auth {self.opts['auth']}"]
        if fwd:
            lines += [f"deliver forward {fwd['rcpt']}", "smtp_host 127.0.0.1",
                      f"smtp_port {fwd['port']}", "smtp_tls off"]
        else:
            lines += [f"deliver mbox {self.out}"]
        self.conf = pt.write_config(self.dir / "config", "\n".join(lines) + "\n")
        if self.opts.get("warm"):
            # the same server, another (empty) mailbox: what a user polling
            # a far server knows of it, nothing of this mailbox's mail
            text = "\n".join(lines).replace(f"user {ep.user}\n", f"user {self.opts['warm']}\n")
            self.warm_conf = pt.write_config(self.dir / "warm", text + "\n")

    def reset(self, fresh=True):
        if fresh:
            unlink(*(f"{self.state}{s}" for s in ("", "-wal", "-shm", "-journal")))
            if self.opts.get("warm"):
                subprocess.run([POPSIFT, "-f", self.warm_conf, "-q", "run"], env=self.env,
                               check=True)
        unlink(self.out)

    def cmd(self):
        return [POPSIFT, "-f", self.conf, "-q", "run"]

    def count(self):
        fwd = self.opts.get("forward")
        return fwd["count"]() if fwd else mbox_count(self.out)


class Mpop(Tool):
    key, label = "mpop", "mpop"

    def setup(self):
        ep = self.ep
        self.uidls = self.dir / "uidls"
        self.out = self.dir / "out.mbox"
        lines = ["account bench", f"host {ep.host}", f"port {ep.port}"]
        lines += (["tls on", "tls_starttls off", f"tls_trust_file {ep.ca}"] if ep.tls
                  else ["tls off"])
        lines += ["auth user", f"user {ep.user}", f"password {PASSWORD}", "keep on",
                  "only_new on", f"uidls_file {self.uidls}", f"delivery mbox {self.out}"]
        self.conf = pt.write_config(self.dir / "mpoprc", "\n".join(lines) + "\n")

    def reset(self, fresh=True):
        if fresh:
            unlink(self.uidls)
        unlink(self.out)

    def cmd(self):
        return ["mpop", "-C", self.conf, "-q", "bench"]

    def count(self):
        return mbox_count(self.out)


class Fetchmail(Tool):
    key, label = "fetchmail", "fetchmail (bsmtp)"
    ok_codes = (0, 1)  # 1: no new mail

    def name(self):
        if self.opts.get("smtp"):
            self.key, self.label = "fetchmail-smtp", "fetchmail → SMTP"

    def setup(self):
        ep = self.ep
        self.ids = self.dir / "fetchids"
        self.out = self.dir / "out.bsmtp"
        smtp = self.opts.get("smtp")
        if smtp:
            deliver = f'smtphost "127.0.0.1/{smtp["port"]}" smtpname "{smtp["rcpt"]}"'
        else:
            deliver = f'bsmtp "{self.out}"'
        # the certificate names localhost (and IP 127.0.0.1 as a SAN, which
        # fetchmail does not check): tell it which name to expect
        tls = (f'ssl sslcertck sslcertfile "{ep.ca}" sslcommonname "localhost"' if ep.tls
               else "sslproto ''")  # '' = no opportunistic STLS
        rc = (f"set no syslog\nset no bouncemail\n"
              f"poll {ep.host} service {ep.port} protocol pop3 uidl auth password:\n"
              f'  user "{ep.user}" there with password "{PASSWORD}" is "root" here\n'
              f"  keep {tls} {deliver}\n")
        self.conf = pt.write_config(self.dir / "fetchmailrc", rc)
        self.env["FETCHMAILHOME"] = str(self.dir)

    def reset(self, fresh=True):
        if fresh:
            unlink(self.ids)
        unlink(self.out)

    def cmd(self):
        return ["fetchmail", "-f", self.conf, "--idfile", self.ids,
                "--pidfile", self.dir / "fetchmail.pid", "-N", "-s"]

    def count(self):
        smtp = self.opts.get("smtp")
        if smtp:
            return smtp["count"]()
        try:
            data = self.out.read_bytes()
        except FileNotFoundError:
            return 0
        return data.count(b"\nMAIL FROM:") + data.startswith(b"MAIL FROM:")


class Fdm(Tool):
    key, label = "fdm", "fdm"

    def setup(self):
        ep = self.ep
        # fdm's fetch process drops root for an unprivileged user
        # (debianfdm): its cache directory must be writable by that user
        self.cdir = self.dir / "cache"
        self.cdir.mkdir(exist_ok=True)
        os.chmod(self.cdir, 0o1777)
        self.cache = self.cdir / "pop3.cache"
        self.out = self.dir / "out.mbox"
        kind = "pop3s" if ep.tls else "pop3"
        conf = (f'set lock-file "{self.dir}/fdm.lock"\n'
                f'set default-user "root"\n'
                f'set maximum-size 128M\n'  # default 32M: scenario 6 has 50 MB
                f'account "bench" {kind} server "{ep.host}" port {ep.port} '
                f'user "{ep.user}" pass "{PASSWORD}" new-only cache "{self.cache}" no-apop keep\n'
                f'action "mbox" mbox "{self.out}"\n'
                f'match all action "mbox"\n')
        self.conf = pt.write_config(self.dir / "fdm.conf", conf)

    def reset(self, fresh=True):
        if fresh:
            unlink(self.cache)
        unlink(self.out)

    def cmd(self):
        return ["fdm", "-q", "-f", self.conf, "fetch"]

    def count(self):
        return mbox_count(self.out)


class Floor(Tool):
    key, label = "floor", "floor (bench/floor.c)"

    def setup(self):
        self.out = self.dir / "stream"
        self.n = self.opts["n"]

    def reset(self, fresh=True):
        unlink(self.out)

    def cmd(self):
        ep = self.ep
        c = [FLOOR, ep.host, ep.port, ep.user, PASSWORD, self.n, self.out]
        return c + [ep.ca] if ep.tls else c

    def count(self):
        # UIDL's terminator plus one per RETR (bodies are dot-stuffed)
        try:
            return self.out.read_bytes().count(b"\r\n.\r\n") - 1
        except FileNotFoundError:
            return -1


# --------------------------------------------------------------------------
# one scenario: tools in alternation, medians

class Result:
    def __init__(self, tool: Tool):
        self.key, self.label = tool.key, tool.label
        self.times: list[float] = []
        self.rss: list[int] = []
        self.error: str | None = None
        self.na: str | None = None
        self.note: str | None = None

    @property
    def median(self):
        return statistics.median(self.times) if self.times else None

    @property
    def rss_median(self):
        return statistics.median(self.rss) if self.rss else None

    @property
    def ok(self):
        return bool(self.times) and not self.error and not self.na


def alternate(tools: list[Tool], expect: int, fresh: bool, runs: int = RUNS) -> dict:
    res = {t.key: Result(t) for t in tools}
    once: set[str] = set()
    for r in range(runs):
        for t in tools:
            rs = res[t.key]
            if rs.error or rs.na or (r > 0 and t.key in once):
                continue
            t.reset(fresh)
            run = timed(t.cmd(), env=t.env)
            t.last = run
            n = t.count()
            if run.rc not in t.ok_codes or n != expect:
                why = first_line(run.err) or first_line(run.out)
                rs.error = (f"exit {run.rc}, {n} of {expect} messages"
                            + (f": {why}" if why else ""))
                log(f"  {t.label}: FAILED ({rs.error})")
                continue
            rs.times.append(run.secs)
            rs.rss.append(run.rss_kb)
            log(f"  run {r + 1}: {t.label:24} {run.secs:8.3f} s  {run.rss_kb / 1024:7.1f} MiB")
            if r == 0 and run.secs > SLOW_LIMIT and runs > 1:
                once.add(t.key)
                log(f"  {t.label}: over {SLOW_LIMIT:.0f} s, runs once")
    return res


# --------------------------------------------------------------------------
# mail

def big_message(size: int, seed: int = 50) -> bytes:
    """One multipart message of about `size` bytes: a text part and a
    base64 attachment of (seeded) random bytes."""
    g = pt.load_genmail()
    head = g.message(0, seed=seed, kind="plain").split(b"\n\n", 1)[0]
    head = b"\n".join(ln for ln in head.split(b"\n")
                      if not ln.lower().startswith((b"content-type", b"content-transfer")))
    boundary = b"=_popsift_bench_big"
    raw = random.Random(seed).randbytes(max(0, (size - 600) * 57 // 77))
    b64 = base64.encodebytes(raw)  # 76 columns
    return (head + b'\nContent-Type: multipart/mixed; boundary="' + boundary + b'"\n\n'
            b"--" + boundary + b"\nContent-Type: text/plain; charset=us-ascii\n\n"
            b"The data set is attached.\n\n--" + boundary +
            b'\nContent-Type: application/octet-stream; name="data.bin"\n'
            b"Content-Transfer-Encoding: base64\n"
            b'Content-Disposition: attachment; filename="data.bin"\n\n'
            + b64 + b"\n--" + boundary + b"--\n")


def mixed_messages(count=1000, every=50) -> list[bytes]:
    """count messages of natural size (~1 KB, all 8 kinds); every `every`-th
    is a multipart one with a 1-4.6 MiB attachment: ~57 MB in all."""
    g = pt.load_genmail()
    sizes = [1.0, 2.0, 3.0, 4.6]
    out = []
    for i in range(count):
        if (i + 1) % every == 0:
            mb = sizes[((i + 1) // every - 1) % len(sizes)]
            out.append(g.message(i, seed=3, size=int(mb * MIB), kind="multipart"))
        else:
            out.append(g.message(i, seed=3))
    return out


# --------------------------------------------------------------------------
# helpers: proxy, SMTP sink, floor binary, versions

@contextlib.contextmanager
def helper(args, what):
    """A Python script from bench/, or a built program."""
    argv = [*map(str, args)]
    if argv[0].endswith(".py"):
        argv.insert(0, sys.executable)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    line = p.stdout.readline().decode().strip()
    if line != "ready":
        p.kill()
        raise RuntimeError(f"{what} did not start: {p.stderr.read().decode()[-500:]}")
    try:
        yield p
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def build_floor() -> str | None:
    out = WORK / "floor"
    r = subprocess.run(["cc", "-O2", "-o", str(out), str(BENCH / "floor.c"), "-lssl", "-lcrypto"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(f"floor does not build (no floor column):\n{r.stderr[-800:]}")
        return None
    return str(out)


def build_sink() -> str:
    out = WORK / "smtp-sink"
    subprocess.run(["cc", "-O2", "-o", str(out), str(BENCH / "smtp-sink.c")], check=True)
    return str(out)


def pkg_version(pkg: str) -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() or "not installed"


def git(*args) -> str:
    r = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        for ln in open("/proc/meminfo"):
            if ln.startswith("MemTotal"):
                mem = f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB"
    fs = "?"
    with contextlib.suppress(OSError):
        best = ""
        for ln in open("/proc/mounts"):
            dev, mnt, typ = ln.split()[:3]
            if str(WORK).startswith(mnt) and len(mnt) >= len(best):
                best, fs = mnt, f"{typ} ({dev} on {mnt})"
    osr = ""
    with contextlib.suppress(OSError):
        for ln in open("/etc/os-release"):
            if ln.startswith("PRETTY_NAME="):
                osr = ln.split("=", 1)[1].strip().strip('"')
    return {"cpu": cpu, "cores": os.cpu_count(), "mem": mem, "kernel": platform.release(),
            "os": osr, "fs": fs}


# --------------------------------------------------------------------------
# the scenarios

def fmt_s(x):
    if x is None:
        return "—"
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def fmt_mib(kb):
    return "—" if kb is None else f"{kb / 1024:.1f} MiB"


def cell(r: Result | None):
    if r is None:
        return "—"
    if r.na:
        return "n/a"
    if r.error:
        return "failed"
    s = fmt_s(r.median)
    return s + (f" ({len(r.times)} run)" if len(r.times) == 1 and RUNS > 1 else "")


def ratio_s(v):
    return "—" if v is None else f"{v:.2f}"


def ratio(a: Result | None, b: Result | None):
    if a is None or b is None or not a.ok or not b.ok:
        return None
    return a.median / b.median


REPORT: dict = {}   # scenario number -> dict(title, results, notes, ...)
IMAP_REPORT: dict = {}   # scenario 8: bench/imap.py's JSON


def fetch_scenario(num, title, ep, expect, fresh, floor_n, tools=None, extra=None):
    log(f"scenario {num}: {title}")
    tag = f"s{num}"
    mk = tools or [Popsift, Mpop, Fetchmail, Fdm]
    ts = [cls(ep, tag) for cls in mk]
    if FLOOR and floor_n is not None:
        ts.append(Floor(ep, tag, n=floor_n))
    if not fresh:
        prime(ts)
    res = alternate(ts, expect if fresh else 0, fresh)
    REPORT[num] = {"title": title, "results": res, **(extra or {})}
    return res


def prime(tools):
    """Poll scenario: every tool first fetches the whole mailbox once (not
    timed, all at the same time), so that the timed runs find nothing new."""
    log("  priming: each tool fetches the mailbox once (not timed)")
    procs = []
    for t in tools:
        if isinstance(t, Floor):
            continue
        t.reset(fresh=True)
        procs.append((t, subprocess.Popen([str(c) for c in t.cmd()], env=t.env,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE)))
    for t, p in procs:
        err = p.communicate()[1].decode(errors="replace")
        if p.returncode not in t.ok_codes:
            log(f"  priming {t.label} failed: exit {p.returncode}: {first_line(err)}")


def scenario5(rounds=RUNS):
    num, title = 5, "~10,000 messages through 17 rules (Maildir in, Maildir folders out)"
    log(f"scenario {num}: {title}")
    d = WORK / "s5"
    src = d / "src"
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o755)
    g = pt.load_genmail()
    msgs = g.generate(10000, seed=5)
    g.write_maildir(src, msgs)
    rules_t = (BENCH / "filter17.rules").read_text()
    fdm_t = (BENCH / "filter17.fdm.conf").read_text()
    info = {"title": title, "results": {}, "messages": len(msgs), "ref": "fdm",
            "mbytes": sum(map(len, msgs)) / 1e6,
            "desc": f"{len(msgs)} messages ({sum(map(len, msgs)) / 1e6:.1f} MB, all 8 kinds) "
                    "in a Maildir; bench/filter17.rules for `popsift filter -r RULES --maildir D`, "
                    "bench/filter17.fdm.conf (the same 17 rules) for fdm reading the Maildir "
                    "(`keep`). Both write one Maildir per folder. Every run writes into a new "
                    "output directory (ext4 allocates inodes slowly right after 10,000 files "
                    "were deleted: deleting the previous run's output between runs made both "
                    "tools several times slower)."}
    REPORT[num] = info
    del msgs

    def folders(root):
        out = {}
        if root.is_dir():
            for f in sorted(root.iterdir()):
                n = sum(1 for sub in ("new", "cur") if (f / sub).is_dir()
                        for _ in (f / sub).iterdir())
                out[f.name] = n
        return out

    class Filt:
        ok_codes = (0,)
        env = dict(os.environ, LC_ALL="C")
        runs = 0

        def reset(self, fresh=True):
            self.runs += 1
            self.cur = d / f"out-{self.key}-{self.runs}"
            self.prepare()

        def count(self):
            return sum(folders(self.cur).values())

    class PF(Filt):
        key, label = "popsift", "popsift filter"

        def prepare(self):
            self.rules = d / f"{self.key}-{self.runs}.rules"
            self.rules.write_text(rules_t.replace("@OUT@", str(self.cur)))

        def cmd(self):
            return [POPSIFT, "filter", "-q", "-r", self.rules, "--maildir", src]

    class PD(PF):
        """Rules only: --dry-run decides and prints, delivers nothing."""
        key, label = "popsift-dry", "popsift filter --dry-run"

        def cmd(self):
            return [POPSIFT, "filter", "-q", "-r", self.rules, "--dry-run", "--maildir", src]

        def count(self):
            # one line per message decided
            return len(self.last.out.splitlines()) if getattr(self, "last", None) else -1

    class FF(Filt):
        key, label = "fdm", "fdm"

        def prepare(self):
            self.conf = pt.write_config(
                d / f"fdm-{self.runs}.conf",
                fdm_t.replace("@OUT@", str(self.cur)).replace("@SRC@", str(src))
                     .replace("@LOCK@", str(d / "fdm.lock")))

        def cmd(self):
            return ["fdm", "-q", "-f", self.conf, "fetch"]

    expect_n = info["messages"]
    pf, pd, ff = PF(), PD(), FF()
    # is `popsift filter` there yet?  One message, dry run.
    pf.reset()
    probe = timed([POPSIFT, "filter", "-r", pf.rules, "--dry-run", next((src / "new").iterdir())])
    if probe.rc != 0 or not probe.out.strip():
        pres = Result(pf)
        pres.na = f"popsift filter not working yet: {first_line(probe.err) or f'exit {probe.rc}'}"
        log(f"  {pres.na}")
        res = alternate([ff], expect_n, True, rounds)
        res["popsift"] = pres
        info["results"] = res
    else:
        res = alternate([pf, ff, pd], expect_n, True, rounds)
        info["results"] = res
        # the last runs' outputs: the same folders with the same counts?
        pc, fc = folders(pf.cur), folders(ff.cur)
        info["folders"] = (pc, fc)
        info["agree"] = pc == fc and bool(pc)
        log(f"  per-folder counts {'agree' if info['agree'] else 'DIFFER'}: "
            + ", ".join(f"{k} {pc.get(k, 0)}/{fc.get(k, 0)}" for k in sorted(set(pc) | set(fc))))
        if "popsift-dry" in res:
            res["popsift-dry"].note = ("rules only, nothing delivered: not a like-with-like "
                                       "comparison, shows what the rules engine costs")
    shutil.rmtree(d, ignore_errors=True)


def scenario7(dc, msgs_n):
    num, title = 7, f"{msgs_n} × ~3 KB messages forwarded over SMTP vs written to an mbox"
    log(f"scenario {num}: {title}")
    port = pt.free_port()
    countfile = WORK / "s7-sink.count"
    countfile.touch()

    def sink_count():
        return len(countfile.read_text().splitlines())

    ep = Endpoint(dc.port, "fwd")
    REPORT[num] = {"title": title, "results": {}, "ref": "popsift",
                   "desc": "Fresh state each run. popsift delivers to an mbox, or forwards "
                           "(`deliver forward`) to bench/smtp-sink.c, a C SMTP server on "
                           "127.0.0.1 that answers at once, offers PIPELINING (as Postfix and "
                           "Exim do), counts and discards: what forwarding costs the client; "
                           "fetchmail forwards to the same sink (`smtphost`, its native path). "
                           "Issue 4's goal: forwarding takes at most 2x the mbox time. "
                           "bench/smtp.sh measures the same against aiosmtpd, exim4 and over "
                           "a 20 ms round trip."}
    with helper([build_sink(), port, countfile], "SMTP sink"):
        base = {"port": port, "rcpt": "alice@localhost"}
        fwd_state = {"start": 0}

        def since():
            return sink_count() - fwd_state["start"]

        opts = dict(base, count=since)
        mbox = Popsift(ep, "s7")
        mbox.label = "popsift → mbox"
        tools = [mbox, Popsift(ep, "s7", forward=opts),
                 Fetchmail(ep, "s7", smtp=opts)]
        for t in tools:
            orig = t.reset

            def reset(fresh=True, _orig=orig):
                _orig(fresh)
                fwd_state["start"] = sink_count()
            t.reset = reset
        # is `deliver forward` there yet?  One untimed try.
        fwd = tools[1]
        fwd.reset()
        probe = timed(fwd.cmd(), env=fwd.env)
        na = None
        if probe.rc != 0 or fwd.count() != msgs_n:
            na = first_line(probe.err) or f"exit {probe.rc}, {fwd.count()} messages"
            log(f"  popsift forward not available: {na}")
            tools.remove(fwd)
        res = alternate(tools, msgs_n, True)
        if na:
            r = Result(fwd)
            r.na = f"`deliver forward` not available yet ({na})"
            res[fwd.key] = r
        REPORT[num]["results"] = res


def scenario8():
    """bench/imap.py in a child (its own Dovecot with IMAP): its JSON rows."""
    num = 8
    title = "1000 × ~3 KB messages appended into Dovecot IMAP over a 20 ms round trip"
    log(f"scenario {num}: {title}")
    env = dict(os.environ, POPSIFT=POPSIFT, BENCH_RUNS=str(RUNS))
    r = subprocess.run(["/usr/bin/python3", str(BENCH / "imap.py"), "--json"], env=env,
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        log(f"  bench/imap.py failed: {r.stderr[-1500:]}")
        NOTES.append(f"Note: scenario 8 failed: {first_line(r.stderr[-300:])}")
        return
    IMAP_REPORT.update(json.loads(r.stdout))
    IMAP_REPORT["title"] = title.replace("1000", str(IMAP_REPORT.get("n", 1000)), 1)


def imap_rows(w, verdicts_only=False):
    """Scenario 8's summary numbers, or its details table."""
    rows = IMAP_REPORT.get("rows", [])
    pop = next((x for x in rows if x["tool"] == "popsift"), None)
    one = next((x for x in rows if x["tool"].startswith("curl -T (one")), None)
    if pop is None or one is None:
        return None
    if verdicts_only:
        return pop["rtts_per_msg"], one["per_msg"] / pop["per_msg"]
    w(f"### 8. {IMAP_REPORT['title']}")
    w("")
    w("bench/imap.py: a Dovecot with POP3 and IMAP (tests/lib/imapd.py); its IMAP port behind "
      "bench/delayproxy.py (10 ms each way), the POP3 side on loopback. popsift fetches the "
      "messages and appends them (`deliver imap`: LITERAL+, APPENDs in flight, no \\Seen); "
      "once more against a Dovecot whose capabilities leave LITERAL+ out (a continuation per "
      "message). libcurl's own IMAP upload for comparison: `curl -T \"{f1,…}\"` (one process, "
      "one connection, each upload waits for its continuation and its tagged OK, and marks "
      "the message \\Seen), and one `curl -T FILE` process per message on the first "
      "messages (scaled per message). Fresh state, empty target folder, each run.")
    w("")
    w("| tool | messages | median | runs (s) | per message | round trips a message | ÷ popsift |")
    w("|---|---|---|---|---|---|---|")
    for x in rows:
        runs = ", ".join(f"{t:.2f}" for t in x["runs"])
        w(f"| {x['tool']} | {x['n']} | {x['median']:.2f} s | {runs} | "
          f"{x['per_msg'] * 1000:.1f} ms | {x['rtts_per_msg']:.2f} | {x['x_popsift']:.2f} |")
    w("")
    return None


# --------------------------------------------------------------------------
# doc/bench.md

def write_doc(started, elapsed, mach, versions):
    R = REPORT
    L = []
    w = L.append
    w("# popsift benchmarks")
    w("")
    w(f"Generated by `make bench` (bench/run.sh → bench/bench.py) on "
      f"{started:%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} min. Do not edit: rerun it.")
    w("")
    w("## Machine and versions")
    w("")
    w(f"- CPU: {mach['cpu']}, {mach['cores']} cores; RAM {mach['mem']}")
    w(f"- OS: {mach['os']}, Linux {mach['kernel']}; work files on {mach['fs']}")
    if len(LOAD) == 2:
        w(f"- Load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in LOAD[0])}; "
          f"after: {' '.join(f'{x:.2f}' for x in LOAD[1])} (the bench's own load included; "
          "anything else running on the machine shows up here and in the spread of the runs)")
    for k, v in versions.items():
        w(f"- {k}: {v}")
    w("")
    w("## Method")
    w("")
    w(f"- A throwaway Dovecot on 127.0.0.1 (tests/lib/popsift_test.py) serves mail made by "
      f"tests/gen-mail.py (all 8 kinds: plain, dot-stuffing, UTF-8, GBK, list, spam, "
      f"multipart, 8bit). Every tool fetches the same mailbox, in alternation "
      f"(A B C D … A B C D …), {RUNS} runs each; the table gives the median wall time. "
      f"A tool whose first run exceeds {SLOW_LIMIT:.0f} s runs once in that scenario "
      f"(marked \"1 run\").")
    w("- Like with like: every tool leaves the mail on the server (keep) and writes one file. "
      "popsift, mpop and fdm append to an mbox; **fetchmail writes BSMTP** "
      "(`bsmtp FILE`: no MTA, no process per message — its fastest local path). "
      "\"Fresh\" runs start without state: popsift's state.db, mpop's uidls file, fetchmail's "
      "idfile and fdm's `new-only` cache are deleted, and so is the output file. "
      "Each run's message count is checked.")
    w("- fetchmail runs with `sslproto ''` on the plain port (no opportunistic STLS); fdm runs as "
      "root with `default-user root` (it forks a child per delivery either way) and does not "
      "verify the POP3S certificate (fdm has no CA-file option); the others verify it.")
    w("- The floor (bench/floor.c): log in, then send UIDL, every RETR and QUIT in one write, and "
      "copy the reply stream to a file — no parsing, no unstuffing, no fsync. No client can do "
      "less work; it is bound by Dovecot.")
    w("- Peak RSS: GNU time's `%M` (the process, or its largest waited-for child).")
    w("")

    # summary
    w("## Summary")
    w("")
    w("| # | scenario | popsift | mpop | fetchmail | fdm | floor | popsift/mpop | popsift/floor | goal | met |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for num in (1, 2, 3, 4):
        if num not in R:
            continue
        res = R[num]["results"]
        p, m, f = res.get("popsift"), res.get("mpop"), res.get("floor")
        rm, rf = ratio(p, m), ratio(p, f)
        gtext, gtest = GOALS[num]
        met = "—" if rm is None else ("yes" if gtest(rm) else "**no**")
        fl = "—" if rf is None else f"{rf:.2f}" + ("" if rf <= FLOOR_GOAL else " (> 2)")
        w(f"| {num} | {R[num]['short']} | {cell(p)} | {cell(m)} | {cell(res.get('fetchmail'))} | "
          f"{cell(res.get('fdm'))} | {cell(f)} | {'—' if rm is None else f'{rm:.2f}'} | {fl} | "
          f"{gtext} | {met} |")
        verdicts.append((num, gtext, rm, met, rf))
    if 5 in R:
        res = R[5]["results"]
        p, fd = res.get("popsift"), res.get("fdm")
        rr = ratio(fd, p)
        gtext, gtest = GOALS[5]
        met = "—" if rr is None else ("yes" if gtest(rr) else "**no**")
        agree = R[5].get("agree")
        cnote = "" if agree is None else (", counts agree" if agree else ", **counts differ**")
        w(f"| 5 | filter {R[5]['messages']} msgs, 17 rules | {cell(p)} | — | — | {cell(fd)} | — | "
          f"fdm/popsift {'—' if rr is None else f'{rr:.1f}x'}{cnote} | — | {gtext} | {met} |")
        verdicts.append((5, gtext, rr, met, None))
    if 6 in R:
        res = R[6]["results"]
        p = res.get("popsift")
        rss = p.rss_median if p and p.ok else None
        gtext, gtest = GOALS[6]
        met = "—" if rss is None else ("yes" if gtest(max(p.rss)) else "**no**")
        def rcell(r):
            if r is None:
                return "—"
            return cell(r) if not r.ok else fmt_mib(max(r.rss))
        w(f"| 6 | peak RSS, one 50 MB message | {rcell(p)} | {rcell(res.get('mpop'))} | "
          f"{rcell(res.get('fetchmail'))} | {rcell(res.get('fdm'))} | — | — | — | {gtext} | {met} |")
        verdicts.append((6, gtext, None if rss is None else max(p.rss) / 1024, met, None))
    if 7 in R:
        res = R[7]["results"]
        pm, pf, fs = res.get("popsift"), res.get("popsift-fwd"), res.get("fetchmail-smtp")
        rr = ratio(pf, pm)
        gtext, gtest = GOALS[7]
        met = "—" if rr is None else ("yes" if gtest(rr) else "**no**")
        w(f"| 7 | 1000 msgs → SMTP vs mbox | SMTP {cell(pf)}; mbox {cell(pm)} | — | "
          f"SMTP {cell(fs)} | — | — | SMTP/mbox {'—' if rr is None else f'{rr:.2f}'} | — | "
          f"{gtext} | {met} |")
        verdicts.append((7, gtext, rr, met, None))
    v8 = imap_rows(w, verdicts_only=True)
    if v8:
        gtext, gtest = GOALS[8]
        met = "yes" if gtest(v8) else "**no**"
        w(f"| 8 | {IMAP_REPORT.get('n', 1000)} msgs → IMAP at 20 ms RTT | {v8[0]:.2f} round trips a message | — | — | — | "
          f"— | curl -T/popsift {v8[1]:.1f}x | — | {gtext} | {met} |")
        verdicts.append((8, gtext, v8, met, None))
    if 9 in R:
        res = R[9]["results"]
        p, m = res.get("popsift"), res.get("mpop")
        rm = ratio(p, m)
        n = R[9].get("rtts", {}).get("popsift")
        v = None if rm is None or n is None else (n, rm)
        gtext, gtest = GOALS[9]
        met = "—" if v is None else ("yes" if gtest(v) else "**no**")
        w(f"| 9 | empty poll, 100 ms RTT | {cell(p)} | {cell(m)} | {cell(res.get('fetchmail'))} | "
          f"— | — | {'—' if rm is None else f'{rm:.2f}'} | — | {gtext} | {met} |")
        verdicts.append((9, gtext, v, met, None))
    if 10 in R:
        res = R[10]["results"]
        p, f = res.get("popsift"), res.get("floor")
        rf = ratio(p, f)
        gtext, gtest = GOALS[10]
        met = "—" if rf is None else ("yes" if gtest(rf) else "**no**")
        w(f"| 10 | 2000 × 3 KB, 100 ms RTT | {cell(p)} | {cell(res.get('mpop'))} | — | — | "
          f"{cell(f)} | {ratio_s(ratio(p, res.get('mpop')))} | {ratio_s(rf)} | {gtext} | {met} |")
        verdicts.append((10, gtext, rf, met, None))
    w("")
    if (BENCH_DOC / "bench.png").exists() and CHART_OK:
        w("![median wall time per scenario, log scale](bench.png)")
        w("")

    # details
    w("## Details")
    w("")
    for num in sorted(R):
        info = R[num]
        w(f"### {num}. {info['title']}")
        w("")
        if info.get("desc"):
            w(info["desc"])
            w("")
        res = info["results"]
        refk = info.get("ref", "mpop")
        ref, f = res.get(refk), res.get("floor")
        reflabel = ref.label if ref else refk
        w(f"| tool | median | runs (s) | peak RSS | ÷ {reflabel} | ÷ floor | note |")
        w("|---|---|---|---|---|---|---|")
        for key, r in res.items():
            runs = ", ".join(f"{t:.3f}" for t in r.times) or "—"
            note = r.na or r.error or r.note or ""
            rm = ratio(r, ref) if key != refk else None
            rf = ratio(r, f) if key != "floor" else None
            w(f"| {r.label} | {cell(r) if not r.ok else fmt_s(r.median)} | {runs} | "
              f"{fmt_mib(max(r.rss) if r.rss else None)} | "
              f"{'—' if rm is None else f'{rm:.2f}'} | {'—' if rf is None else f'{rf:.2f}'} | "
              f"{note} |")
        w("")
        if num == 5 and info.get("folders"):
            pc, fc = info["folders"]
            w("Messages per folder (popsift / fdm): " + ", ".join(
                f"{k} {pc.get(k, 0)}/{fc.get(k, 0)}" for k in sorted(set(pc) | set(fc)))
              + (" — identical." if info.get("agree") else " — **they differ**."))
            w("")
        for note in info.get("notes", []):
            w(note)
            w("")

    imap_rows(w)

    # goals
    w("## Goals")
    w("")
    w("| # | goal | measured | met |")
    w("|---|---|---|---|")
    for num, gtext, val, met, rf in verdicts:
        if val is None:
            mtext = "n/a"
        elif num == 5:
            mtext = f"{val:.1f}x"
        elif num == 6:
            mtext = f"{val:.1f} MiB"
        elif num == 8:
            mtext = f"{val[0]:.2f} round trips a message, curl -T/popsift {val[1]:.1f}x"
        elif num == 9:
            mtext = f"{val[0]:.2f} round trips, popsift/mpop {val[1]:.2f}"
        else:
            mtext = f"{val:.2f}"
        w(f"| {num} | {gtext} | {mtext} | {met} |")
    for num, gtext, val, met, rf in verdicts:
        if rf is not None:
            w(f"| {num} | popsift within 2x of the floor | {rf:.2f} | "
              f"{'yes' if rf <= FLOOR_GOAL else '**no**'} |")
    w("")
    w("## Notes on the peers")
    w("")
    w("- mpop runs with `auth user`: Debian's mpop will not send a password without TLS "
      "otherwise (\"cannot use a secure authentication method\"). popsift uses its default "
      "(`auth any`: libcurl picks SASL CRAM-MD5 here); fetchmail and fdm use theirs.")
    w("- fetchmail sends one command per message and waits for it (it uses `TOP n 99999999`, "
      "not RETR, when it keeps mail), so at 20 ms RTT it is bound by round trips. Its SMTP "
      "path writes each line with its own write(2): the final `.` line then waits for the "
      "receiver's delayed ACK (Nagle), ~40 ms per message on Linux loopback, whatever the "
      "SMTP server.")
    w("- fdm forks a child for every message it delivers (one clone and one wait4 per message "
      "under strace) and waits for each reply before the next command; it holds a whole "
      "message in memory (its default `maximum-size` of 32 MB is raised to 128M for "
      "scenario 6). Run as root it needs `default-user`; its fetch child runs as the "
      "`debianfdm` user, so its cache directory is world-writable (sticky).")
    w("- The delay proxy is Python: it adds no measurable time at loopback rates, but the "
      "20 ms scenario measures round trips, not bandwidth.")
    w("")
    for extra in NOTES:
        w(extra)
        w("")
    (BENCH_DOC / "bench.md").write_text("\n".join(L).rstrip() + "\n")


CHART_OK = False


def chart():
    """doc/bench.png: median wall time per tool for scenarios 1-4 and 7
    (log scale), when gnuplot is installed."""
    global CHART_OK
    gp = shutil.which("gnuplot")
    if not gp:
        log("gnuplot not installed: no chart")
        return
    cols = ["popsift", "mpop", "fetchmail", "fdm", "floor"]
    rows = []
    for num in (1, 2, 3, 4):
        if num in REPORT:
            res = REPORT[num]["results"]
            vals = [f"{res[c].median:.4f}" if c in res and res[c].ok else "?" for c in cols]
            rows.append(f'"{num}: {REPORT[num]["chart"]}" ' + " ".join(vals))
    if 5 in REPORT:
        res = REPORT[5]["results"]
        vals = [f"{res[c].median:.4f}" if c in res and res[c].ok else "?" for c in cols]
        rows.append('"5: filter 10k, 17 rules" ' + " ".join(vals))
    if not rows:
        return
    dat = WORK / "chart.dat"
    dat.write_text("# scenario " + " ".join(cols) + "\n" + "\n".join(rows) + "\n")
    png = BENCH_DOC / "bench.png"
    script = f"""
set terminal pngcairo size 1000,560 font ",10" noenhanced
set output "{png}"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [0.01:*]
set ylabel "median wall time, seconds (log scale)"
set title "popsift vs mpop, fetchmail, fdm and the floor (lower is better)"
set key outside bottom center horizontal
set bmargin 5
set xrange [-0.5:{len(rows) - 0.5}]
set grid ytics
set xtics nomirror
plot "{dat}" using 2:xtic(1) title "popsift" lc rgb "#1b9e77", \\
     "" using 3 title "mpop" lc rgb "#7570b3", \\
     "" using 4 title "fetchmail (bsmtp)" lc rgb "#d95f02", \\
     "" using 5 title "fdm" lc rgb "#e7298a", \\
     "" using 6 title "floor" lc rgb "#666666"
"""
    r = subprocess.run([gp], input=script, capture_output=True, text=True)
    if r.returncode != 0 or not png.exists():
        # no cairo in this gnuplot? plain png terminal
        script = script.replace('pngcairo size 1000,560 font ",10" noenhanced', "png size 1000,560")
        r = subprocess.run([gp], input=script, capture_output=True, text=True)
    CHART_OK = r.returncode == 0 and png.exists()
    if not CHART_OK:
        log(f"gnuplot failed: {r.stderr[-300:]}")


# --------------------------------------------------------------------------

NOTES: list[str] = []
LOAD: list = []
POPSIFT_INFO: dict = {}
WORK: Path
FLOOR: str | None
BENCH_DOC = REPO / "doc"


def main() -> int:
    global WORK, FLOOR, POPSIFT
    POPSIFT_INFO["rev"] = ((git("rev-parse", "--short", "HEAD") or "?")
                           + (" + uncommitted changes in src/"
                              if git("status", "--porcelain", "--", "src") else ""))
    if os.geteuid() != 0:
        log("must run as root (the test Dovecot is started as root)")
        return 1
    if not Path(POPSIFT).exists():
        log(f"{POPSIFT} missing: run make first")
        return 1
    for tool in ("mpop", "fetchmail", "fdm", "dovecot"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            log(f"{tool} not installed (bench/run.sh installs it)")
            return 1
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    LOAD.append(os.getloadavg())
    WORK = Path(tempfile.mkdtemp(prefix="popsift-bench-", dir="/tmp"))
    os.chmod(WORK, 0o755)
    # the fixture's Dovecot directory goes inside WORK, out of the way of
    # anything that sweeps /tmp/popsift-dovecot-* while the bench runs
    tempfile.tempdir = str(WORK)
    log(f"work directory {WORK}")
    # measure one binary: others may rebuild ./popsift while this runs
    shutil.copy2(POPSIFT, WORK / "popsift")
    POPSIFT_INFO["built"] = datetime.datetime.fromtimestamp(
        os.stat(POPSIFT).st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    POPSIFT = str(WORK / "popsift")
    FLOOR = build_floor()
    want = lambda n: not ONLY or n in ONLY  # noqa: E731
    g = pt.load_genmail()

    log("generating mail")
    small = g.generate(2000, seed=1, size_kb=3)
    mail: dict[str, list[bytes]] = {}
    if want(1) or want(2) or want(10):
        mail["small"] = small
    if want(3):
        mail["mixed"] = mixed_messages()
    mixed_mb = sum(map(len, mail.get("mixed", []))) / 1e6
    if want(4):
        mail["many"] = g.generate(20000, seed=4)
    if want(6):
        mail["big"] = [big_message(50 * 1000 * 1000)]
    if want(7):
        mail["fwd"] = small[:1000]
    users = {u: PASSWORD for u in ("small", "mixed", "many", "big", "fwd", "empty")}

    def start_server():
        dc = pt.Dovecot(users=users, keep_dir=KEEP)
        log(f"Dovecot on 127.0.0.1:{dc.port} (POP3S {dc.port_ssl}); loading mail")
        for u, msgs in mail.items():
            dc.add_messages(u, msgs)
        # Dovecot builds its index on first access: do it now, untimed
        if FLOOR:
            for u, n, tls in (("small", 2000, 0), ("mixed", 1000, 1), ("many", 0, 0),
                              ("big", 1, 0), ("fwd", 1000, 0)):
                if u in mail:
                    ep = Endpoint(dc.port_ssl if tls else dc.port, u, bool(tls), dc.cafile)
                    subprocess.run([FLOOR, ep.host, str(ep.port), u, PASSWORD, str(n),
                                    str(WORK / "warmup")] + ([str(dc.cafile)] if tls else []),
                                   capture_output=True)
            unlink(WORK / "warmup")
        return dc

    def healthy(dc):
        return (dc.proc is not None and dc.proc.poll() is None and dc.cafile.exists()
                and pt._port_open(dc.port))

    def s1(dc):
        fetch_scenario(1, "2000 × ~3 KB messages over loopback, fresh state",
                       Endpoint(dc.port, "small"), 2000, True, 2000,
                       extra={"short": "2000 × 3 KB, loopback", "chart": "loopback",
                              "desc": f"{sum(map(len, small)) / 1e6:.1f} MB in 2000 messages; "
                                      "plain POP3 on 127.0.0.1."})

    def s2(dc):
        pport = pt.free_port()
        with helper([BENCH / "delayproxy.py", pport, dc.port, 10], "delay proxy"):
            fetch_scenario(2, "the same through a proxy adding 20 ms round trip",
                           Endpoint(pport, "small"), 2000, True, 2000,
                           extra={"short": "2000 × 3 KB, 20 ms RTT", "chart": "20 ms RTT",
                                  "desc": "bench/delayproxy.py (Python asyncio) delays "
                                          "every chunk by 10 ms in each direction, without "
                                          "throttling."})

    def s3(dc):
        fetch_scenario(3, "1000 mixed messages with multi-MB attachments over POP3S",
                       Endpoint(dc.port_ssl, "mixed", True, dc.cafile), 1000, True, 1000,
                       extra={"short": f"1000 mixed, {mixed_mb:.0f} MB, POP3S",
                              "chart": f"POP3S, {mixed_mb:.0f} MB",
                              "desc": f"{mixed_mb:.1f} MB: 980 messages of natural size "
                                      "(~1 KB) and 20 multipart ones with 1–4.6 MiB "
                                      "base64 attachments; TLS from the first byte "
                                      "(POP3S), certificate checked."})

    def s4(dc):
        fetch_scenario(4, "a poll that finds nothing new in 20,000 kept messages",
                       Endpoint(dc.port, "many"), 0, False, 0,
                       extra={"short": "poll, 20,000 kept, none new",
                              "chart": "poll, 20k kept",
                              "desc": "Each tool first fetched all 20,000 messages once "
                                      "(untimed, all at the same time); the timed runs keep "
                                      "their state and find nothing to fetch. The floor "
                                      "sends UIDL and QUIT."})

    def s6(dc):
        fetch_scenario(6, "peak RSS fetching one 50 MB message (fresh)",
                       Endpoint(dc.port, "big"), 1, True, None,
                       extra={"short": "one 50 MB message",
                              "desc": "One multipart message of 50 MB (a base64 "
                                      "attachment), plain POP3 on loopback."})

    def s9(dc):
        """The same tools through a proxy adding nothing, then 100 ms RTT: the
        difference over the RTT is the round trips, whatever the machine's
        own costs (process start, Dovecot's login) are."""
        far, near = pt.free_port(), pt.free_port()
        tools = [functools.partial(Popsift, auth="user"), Mpop, Fetchmail]
        with helper([BENCH / "delayproxy.py", near, dc.port, 0], "delay proxy"), \
                helper([BENCH / "delayproxy.py", far, dc.port, RTT_FAR * 500], "delay proxy"):
            base = [cls(Endpoint(near, "empty"), "s9-0ms") for cls in tools]
            log("scenario 9, baseline: the same poll through the proxy adding no delay")
            prime(base)
            res0 = alternate(base, 0, False)
            res = fetch_scenario(
                9, "an empty poll at 100 ms round trip", Endpoint(far, "empty"), 0, False,
                None, tools=tools,
                extra={"short": "empty poll, 100 ms RTT",
                       "desc": "An empty mailbox behind bench/delayproxy.py delaying every "
                               "chunk by 50 ms each way. Each tool polled it once before "
                               "(untimed), so popsift knows the server's capabilities. "
                               "popsift and mpop log in with USER/PASS (`auth user`), "
                               "fetchmail with its default. Round trips: (median at 100 ms "
                               "− median of the same poll through the proxy adding 0 ms) "
                               "/ 100 ms; the TCP connect to the proxy is local, the "
                               "greeting's way back is half a round trip."})
        notes = REPORT[9].setdefault("notes", [])
        rtts = {}
        for key, r in res.items():
            r0 = res0.get(key)
            if r.ok and r0 is not None and r0.ok:
                rtts[key] = (r.median - r0.median) / RTT_FAR
                notes.append(f"{r.label}: {r.median:.3f} s at 100 ms, {r0.median:.3f} s at 0 ms: "
                             f"{rtts[key]:.2f} round trips.")
                log(f"  {r.label}: {rtts[key]:.2f} round trips "
                    f"({r.median:.3f} s at 100 ms, {r0.median:.3f} s at 0 ms)")
        REPORT[9]["rtts"] = rtts

    def s10(dc):
        pport = pt.free_port()
        with helper([BENCH / "delayproxy.py", pport, dc.port, RTT_FAR * 500], "delay proxy"):
            fetch_scenario(10, "2000 × ~3 KB messages at 100 ms round trip, fresh state",
                           Endpoint(pport, "small"), 2000, True, 2000,
                           tools=[functools.partial(Popsift, auth="user", warm="empty"),
                                  Mpop],
                           extra={"short": "2000 × 3 KB, 100 ms RTT",
                                  "desc": "Scenario 1's mailbox behind bench/delayproxy.py "
                                          "delaying every chunk by 50 ms each way; popsift "
                                          "and mpop with `auth user` (the floor logs in "
                                          "with USER/PASS too). Fresh state, except that "
                                          "popsift polled another (empty) mailbox on the "
                                          "same server first (untimed), so it knows the "
                                          "server pipelines, as the floor assumes: a "
                                          "first contact ever costs one round trip more "
                                          "(CAPA)."})

    scenarios = [(1, s1), (2, s2), (3, s3), (4, s4), (5, lambda dc: scenario5()),
                 (6, s6), (7, lambda dc: scenario7(dc, 1000)), (9, s9), (10, s10)]
    dc = start_server()
    try:
        for num, fn in scenarios:
            if not want(num):
                continue
            for attempt in (1, 2):
                if not healthy(dc):
                    log("Dovecot is gone (killed or its directory removed from outside): "
                        "starting a new one")
                    dc.stop()
                    dc = start_server()
                fn(dc)
                if num == 5 or healthy(dc):
                    break
                msg = (f"Dovecot died during scenario {num} (killed, or its files removed, by "
                       f"something outside the bench)")
                if attempt == 1:
                    log(msg + ": running the scenario again on a new server")
                    NOTES.append(f"Note: {msg}; the scenario was run again from the start on "
                                 "a new server, and those are the numbers shown.")
                else:
                    NOTES.append(f"Note: {msg}, twice: its numbers are incomplete.")
    finally:
        dc.stop()
    if want(8):
        scenario8()
    elapsed = time.monotonic() - t_start
    LOAD.append(os.getloadavg())

    versions = {
        "popsift": POPSIFT_INFO["rev"] + f" (binary built {POPSIFT_INFO['built']})",
        "mpop": pkg_version("mpop"), "fetchmail": pkg_version("fetchmail"),
        "fdm": pkg_version("fdm"), "Dovecot": pkg_version("dovecot-pop3d"),
        "libcurl": pkg_version("libcurl4"), "OpenSSL": pkg_version("libssl3"),
    }
    summary_to_stdout()
    if WRITE_DOC:
        chart()
        write_doc(started, elapsed, machine(), versions)
        log(f"wrote {BENCH_DOC / 'bench.md'}" + (" and bench.png" if CHART_OK else ""))
    else:
        log("BENCH_ONLY set: doc/bench.md not rewritten (BENCH_WRITE=1 to force)")
    if KEEP:
        log(f"kept {WORK}")
    else:
        shutil.rmtree(WORK, ignore_errors=True)
    log(f"done in {elapsed / 60:.1f} min")
    return 0


def summary_to_stdout():
    print()
    print(f"{'scenario':34} {'tool':24} {'median':>10} {'runs':>4} {'peak RSS':>10}  note")
    for num in sorted(REPORT):
        for key, r in REPORT[num]["results"].items():
            print(f"{num}: {REPORT[num].get('short', REPORT[num]['title'])[:31]:31} "
                  f"{r.label:24} {fmt_s(r.median):>10} {len(r.times):>4} "
                  f"{fmt_mib(max(r.rss) if r.rss else None):>10}  {r.na or r.error or ''}")
    print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
