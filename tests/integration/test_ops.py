"""Integration tests for issue 17's logging and operations, against a
real Dovecot:

- `log FILE` and a terminal: an interactive `run` (stderr a pty) shows its
  lines on the terminal and writes them to the file; without a terminal
  they go to the file only; the daemon never copies them to a terminal.
- the daemon's default log says what changed and what failed: a poll that
  found nothing is a line only at -v.
- `after_run COMMAND`: a real script gets the run's counts in its
  environment, without a shell; its failure or a timeout is logged and
  changes nothing about the mail.
- `metrics FILE`: Prometheus text exposition format (checked by a strict
  parser below), values that match real runs, mode 0644, written
  atomically, by `run` and by the daemon.

Deterministic on a busy machine: waits poll for a condition under a
generous deadline (SAFETY), never sleep for a fixed time.

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_ops.py
"""

import fcntl
import math
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import popsift_test as pt

SAFETY = 60   # s: only ends a test that would hang


def mkmsg(tag: str) -> bytes:
    mid = f"<{tag}.{uuid.uuid4().hex}@ops.test>"
    return (f"From: Sender <sender@example.com>\nTo: alice@example.org\n"
            f"Subject: {tag}\nMessage-ID: {mid}\n\nHello.\n").encode()


def wait_until(pred, what: str, timeout: float = SAFETY):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def run_on_pty(popsift, *args, timeout=SAFETY) -> tuple[int, str]:
    """popsift with stdin, stdout and stderr on a new pseudo-terminal:
    (exit code, everything the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([str(popsift), *map(str, args)], stdin=slave, stdout=slave,
                         stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:   # EIO: the last holder of the slave closed it
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None and not select.select([master], [], [], 0)[0]:
            break
    os.close(master)
    code = p.wait(timeout=SAFETY)
    return code, out.decode(errors="replace").replace("\r\n", "\n")


# --------------------------------------------------------------------------
# log FILE and a terminal

def test_log_file_run_at_a_terminal_shows_lines_there_too(dovecot, config, popsift, run, tmp):
    dovecot.add_message("alice", mkmsg("one"))
    log = tmp / "popsift.log"
    cfg = config(defaults={"log": log})
    code, screen = run_on_pty(popsift, "-f", cfg, "run")
    assert code == 0, screen
    assert re.search(r"^test: 1 new, 1 delivered", screen, re.M), screen
    assert re.search(r"^\S+ test: 1 new, 1 delivered", log.read_text(), re.M)

    # -v: the dialogue too, on both
    dovecot.add_message("alice", mkmsg("two"))
    code, screen = run_on_pty(popsift, "-v", "-f", cfg, "run")
    assert code == 0 and "test: C: UIDL" in screen, screen
    assert "test: C: UIDL" in log.read_text()

    # --dry-run: its lines and the summary
    dovecot.add_message("alice", mkmsg("three"))
    code, screen = run_on_pty(popsift, "-f", cfg, "run", "--dry-run")
    assert code == 0 and "1 three |" in screen and "test: 1 new" in screen, screen

    # not a terminal (cron, a script): the file only, as before
    dovecot.add_message("alice", mkmsg("four"))
    r = run("-f", cfg, "run")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert re.search(r"^\S+ test: 2 new, 2 delivered", log.read_text(), re.M)   # three, four


def test_log_file_lock_busy_is_said_on_the_terminal(dovecot, config, popsift, tmp):
    log = tmp / "popsift.log"
    cfg = config(defaults={"log": log, "lock_wait": 0})
    lock = tmp / "state.db.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, screen = run_on_pty(popsift, "-f", cfg, "run")
    finally:
        os.close(fd)
    assert code == 75
    assert "another popsift is using" in screen, screen
    assert "another popsift is using" in log.read_text()


def test_daemon_at_a_terminal_writes_only_the_file(dovecot, popsift, tmp):
    dovecot.add_message("alice", mkmsg("one"))
    log = tmp / "popsift.log"
    cfg = pt.write_config(tmp / "config", pt.account_config(
        dovecot, "alice", defaults={"state": tmp / "state.db", "log": log},
        deliver=f"mbox {tmp / 'inbox.mbox'}", interval=3600))
    master, slave = pty.openpty()
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "daemon"], stdin=slave, stdout=slave,
                         stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        wait_until(lambda: log.exists() and "test: 1 new" in log.read_text(), "the first poll")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=SAFETY)
    screen = b""
    while select.select([master], [], [], 0)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert screen == b"", screen


# --------------------------------------------------------------------------
# the daemon's log: what changed and what failed

def daemon_log(popsift, dovecot, tmp, verbose: bool, polls: int) -> str:
    """Run the daemon (interval 1) until it has polled `polls` times after
    delivering one message; its log file's text."""
    dovecot.add_message("alice", mkmsg("one"))
    log = tmp / "popsift.log"
    state = tmp / "state.db"
    cfg = pt.write_config(tmp / "config", pt.account_config(
        dovecot, "alice", defaults={"state": state, "log": log},
        deliver=f"mbox {tmp / 'inbox.mbox'}", interval=1))
    p = subprocess.Popen([str(popsift), *(["-v"] if verbose else []), "-f", str(cfg), "daemon"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)

    def runs():
        if not state.exists():
            return 0
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=SAFETY)
        try:
            return db.execute("SELECT coalesce(sum(polls), 0) FROM runs WHERE status=0").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            db.close()
    try:
        wait_until(lambda: runs() >= polls, f"{polls} polls")
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=SAFETY) == 0
    return log.read_text()


def test_daemon_log_leaves_out_empty_polls(dovecot, popsift, tmp):
    text = daemon_log(popsift, dovecot, tmp, verbose=False, polls=4)
    assert len(re.findall(r" test: 1 new, 1 delivered", text)) == 1, text
    assert " 0 new" not in text, text
    assert "daemon started" in text and "daemon stopped" in text


def test_daemon_log_shows_empty_polls_at_v(dovecot, popsift, tmp):
    text = daemon_log(popsift, dovecot, tmp, verbose=True, polls=3)
    assert len(re.findall(r" test: 0 new, 0 delivered", text)) >= 2, text


# --------------------------------------------------------------------------
# after_run

HOOK = """#!/bin/sh
# one line per call: its arguments, then the environment popsift gave it
out="$1"
shift
{
  printf 'ARGS=%s\\n' "$*"
  env | grep '^POPSIFT_' | sort
  echo END
} >> "$out"
exit 0
"""


def hook_script(tmp: Path, body: str = HOOK) -> Path:
    p = tmp / "hook.sh"
    p.write_text(body)
    p.chmod(0o755)
    return p


def hook_calls(path: Path) -> list[dict]:
    calls, cur = [], {}
    for line in path.read_text().splitlines():
        if line == "END":
            calls.append(cur)
            cur = {}
        else:
            k, _, v = line.partition("=")
            cur[k] = v
    return calls


def test_after_run_gets_the_counts(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [mkmsg("a"), mkmsg("b")])
    out = tmp / "calls"
    hook = hook_script(tmp)
    # no shell: $HOME and the quotes reach the script as written
    cfg = config(after_run=f"{hook} {out} '$HOME' \"two words\"")
    r = run("-f", cfg, "run", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("{"), r.stdout   # the hook's output is not in the JSON
    calls = hook_calls(out)
    assert calls == [{
        "ARGS": "$HOME two words", "POPSIFT_ACCOUNT": "test", "POPSIFT_NEW": "2",
        "POPSIFT_DELIVERED": "2", "POPSIFT_KEPT": "0", "POPSIFT_DELETED": "2",
        "POPSIFT_FAILED": "0", "POPSIFT_BYTES": calls[0]["POPSIFT_BYTES"],
        "POPSIFT_EXIT": "0", "POPSIFT_ERROR": ""}]
    assert int(calls[0]["POPSIFT_BYTES"]) > 100
    # an empty poll runs it too (a heartbeat for a metrics push)
    assert run("-f", cfg, "run").returncode == 0
    assert hook_calls(out)[1]["POPSIFT_NEW"] == "0"
    # --dry-run changes nothing: no hook
    assert run("-f", cfg, "run", "--dry-run").returncode == 0
    assert len(hook_calls(out)) == 2


def test_after_run_sees_a_failed_run(dovecot, config, run, tmp):
    out = tmp / "calls"
    cfg = config(after_run=f"{hook_script(tmp)} {out}", port=pt.free_port())
    r = run("-f", cfg, "run")
    assert r.returncode in (69, 75), r.stderr
    c = hook_calls(out)[0]
    assert c["POPSIFT_EXIT"] == str(r.returncode)
    assert c["POPSIFT_ERROR"] and "\n" not in c["POPSIFT_ERROR"]
    assert c["POPSIFT_ERROR"] in r.stderr


def test_after_run_failure_changes_nothing(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("a"))
    hook = hook_script(tmp, "#!/bin/sh\necho hook says no >&2\nexit 3\n")
    cfg = config(after_run=str(hook))
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert "test: after_run " in r.stderr and "exited with 3" in r.stderr
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1 and dovecot.count("alice") == 0
    # a command that does not exist
    cfg = config(after_run=str(tmp / "no-such-hook"))
    r = run("-f", cfg, "run")
    assert r.returncode == 0 and "not found?" in r.stderr, r.stderr


def test_after_run_timeout_kills_it(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("a"))
    hook = hook_script(tmp, "#!/bin/sh\nsleep 600 &\nexec sleep 600\n")
    cfg = config(after_run=str(hook), after_run_timeout=1)
    t0 = time.monotonic()
    r = run("-f", cfg, "run", timeout=SAFETY)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < SAFETY / 2
    assert "did not finish within 1 s: killed" in r.stderr
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1


# --------------------------------------------------------------------------
# metrics

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_prom(text: str) -> dict:
    """A strict reader of the Prometheus text exposition format (0.0.4):
    {family: {"type", "help", "samples": {labels tuple: float}}}.  Fails
    on anything the format does not allow."""
    assert text.endswith("\n"), "the last line must end with a newline"
    fams: dict = {}
    cur = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                assert NAME.fullmatch(parts[2]), where
                f = fams.setdefault(parts[2], {"samples": {}})
                key = parts[1].lower()
                assert key not in f, f"second {parts[1]}: {where}"
                assert not f["samples"], f"{parts[1]} after samples: {where}"
                f[key] = parts[3] if len(parts) > 3 else ""
                if key == "type":
                    assert f["type"] in ("counter", "gauge", "untyped", "summary",
                                         "histogram"), where
                cur = parts[2]
            continue
        assert line.strip(), f"blank line: {where}"
        m = SAMPLE.match(line)
        assert m, where
        name, labels, value = m.group(1), m.group(2), m.group(3)
        assert name == cur, f"sample outside its family's block: {where}"
        lab = []
        if labels:
            pos = 0
            while pos < len(labels):
                lm = LABEL.match(labels, pos)
                assert lm, f"bad labels: {where}"
                lab.append((lm.group(1), lm.group(2)))
                pos = lm.end()
        v = float(value)   # raises on garbage
        assert not math.isnan(v), where
        key = tuple(lab)
        assert key not in fams[name]["samples"], f"duplicate sample: {where}"
        fams[name]["samples"][key] = v
    for name, f in fams.items():
        assert "type" in f, f"{name} has no TYPE"
        if f["type"] == "counter":
            assert name.endswith("_total"), name
            assert all(v >= 0 for v in f["samples"].values()), name
    return fams


def metric(fams: dict, name: str, account: str) -> float:
    return fams[name]["samples"][(("account", account),)]


def test_parser_is_strict():
    good = "# HELP a_total x\n# TYPE a_total counter\na_total{account=\"q\\\"\"} 3\n"
    assert metric(parse_prom(good), "a_total", 'q\\"') == 3
    for bad in ("a_total 3\n",                                    # no TYPE
                good + "a_total{account=\"r\"} 4\n# TYPE b gauge\nb 1\na_total 5\n",
                good.replace(" 3", " three"),
                good.replace("counter", "countr"),
                good + "\n",
                good[:-1]):
        with pytest.raises((AssertionError, ValueError)):
            parse_prom(bad)


def test_metrics_file_after_runs(dovecot, config, run, tmp):
    prom_dir = tmp / "textfile"
    prom_dir.mkdir()
    prom = prom_dir / "popsift.prom"
    dovecot.add_messages("alice", [mkmsg("a"), mkmsg("b")])
    cfg = config(defaults={"metrics": prom},
                 extra=f"account other\nhost 127.0.0.1\nport {pt.free_port()}\n"
                       f"user bob\npassword x\ntls off\nauth user\n"
                       f"deliver mbox {tmp / 'other.mbox'}\n")
    t0 = time.time()
    r = run("-f", cfg, "run", "test")
    assert r.returncode == 0, r.stderr
    fams = parse_prom(prom.read_text())
    assert prom.stat().st_mode & 0o777 == 0o644
    assert metric(fams, "popsift_runs_total", "test") == 1
    assert metric(fams, "popsift_messages_new_total", "test") == 2
    assert metric(fams, "popsift_messages_delivered_total", "test") == 2
    assert metric(fams, "popsift_messages_deleted_total", "test") == 2
    assert metric(fams, "popsift_errors_total", "test") == 0
    assert metric(fams, "popsift_last_exit_code", "test") == 0
    assert metric(fams, "popsift_runs_total", "other") == 0   # not polled yet: zeros
    assert t0 - 1 <= metric(fams, "popsift_last_success_timestamp_seconds", "test") <= time.time() + 1
    assert metric(fams, "popsift_last_run_timestamp_seconds", "test") == \
        metric(fams, "popsift_last_success_timestamp_seconds", "test")
    assert 0 < metric(fams, "popsift_last_run_duration_seconds", "test") < SAFETY
    assert metric(fams, "popsift_bytes_total", "test") > 100
    success = metric(fams, "popsift_last_success_timestamp_seconds", "test")

    # a second run adds to the totals; a failing account counts its errors
    dovecot.add_message("alice", mkmsg("c"))
    r = run("-f", cfg, "run")
    assert r.returncode in (69, 75), r.stderr
    fams = parse_prom(prom.read_text())
    assert metric(fams, "popsift_runs_total", "test") == 2
    assert metric(fams, "popsift_messages_delivered_total", "test") == 3
    assert metric(fams, "popsift_runs_total", "other") == 1
    assert metric(fams, "popsift_errors_total", "other") == 1
    assert metric(fams, "popsift_last_exit_code", "other") == r.returncode
    assert metric(fams, "popsift_last_success_timestamp_seconds", "other") == 0
    assert metric(fams, "popsift_last_success_timestamp_seconds", "test") >= success
    # the values are those `status --json` and the database show
    db = sqlite3.connect(tmp / "state.db")
    assert db.execute("SELECT sum(delivered) FROM runs WHERE account='test'").fetchone()[0] == 3
    db.close()
    assert sorted(p.name for p in prom_dir.iterdir()) == ["popsift.prom"]   # no temp files


def test_metrics_written_by_the_daemon(dovecot, popsift, tmp):
    prom = tmp / "popsift.prom"
    dovecot.add_message("alice", mkmsg("a"))
    cfg = pt.write_config(tmp / "config", pt.account_config(
        dovecot, "alice", defaults={"state": tmp / "state.db", "metrics": prom},
        deliver=f"mbox {tmp / 'inbox.mbox'}", interval=1))
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "daemon"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)

    def runs():
        try:
            return metric(parse_prom(prom.read_text()), "popsift_runs_total", "test")
        except FileNotFoundError:
            return 0
    try:
        wait_until(lambda: runs() >= 3, "three polls in the metrics file")
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=SAFETY) == 0
    fams = parse_prom(prom.read_text())
    assert metric(fams, "popsift_messages_delivered_total", "test") == 1
