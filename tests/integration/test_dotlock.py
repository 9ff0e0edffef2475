"""mbox dotlocks made by other programs (deliver-mbox.c, popsift.conf(5)'s
`deliver mbox`), with the real tools: procmail's lockfile(1), which
writes "0", and liblockfile's dotlockfile, which writes a process id.

- a fresh lock of either kind is respected: popsift waits its 60 s for
  it, then gives up with exit 75 and the mail stays on the server;
- a lock without a process id is broken once older than procmail's
  LOCKTIMEOUT (1024 s; an old mtime made with os.utime);
- a lock whose process is gone is broken at once, whatever its age.

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_dotlock.py
"""

import os
import shutil
import subprocess
import time
import uuid

import pytest

import popsift_test as pt

LOCKFILE = shutil.which("lockfile")
DOTLOCKFILE = shutil.which("dotlockfile")
need_lockfile = pytest.mark.skipif(LOCKFILE is None,
                                   reason="procmail's lockfile(1) not installed (tests/deps.sh)")
need_dotlockfile = pytest.mark.skipif(
    DOTLOCKFILE is None, reason="liblockfile-bin's dotlockfile not installed (tests/deps.sh)")


def mkmsg(tag: str) -> bytes:
    return (f"From: Sender <sender@example.com>\nTo: alice@example.org\nSubject: {tag}\n"
            f"Message-ID: <{tag}.{uuid.uuid4().hex}@dotlock.test>\n\nHello.\n").encode()


def lock_with_lockfile(lock):
    subprocess.run([LOCKFILE, "-r", "0", str(lock)], check=True)
    assert lock.read_bytes() == b"0"


def delivered(tmp) -> int:
    mbox = tmp / "inbox.mbox"
    return len(pt.mbox_messages(mbox)) if mbox.exists() else 0


@need_lockfile
@need_dotlockfile
def test_fresh_locks_are_respected(make_dovecot, popsift, tmp):
    """Both kinds at once (two runs side by side: the wait is 60 s each)."""
    dc = make_dovecot(users={"alice": "secret", "bob": "secret"})
    runs = []
    holder = None
    try:
        for user in ("alice", "bob"):
            d = tmp / user
            d.mkdir()
            dc.add_message(user, mkmsg(user))
            lock = d / "inbox.mbox.lock"
            if user == "alice":
                lock_with_lockfile(lock)
            else:
                # dotlockfile -p holds the lock with its own pid while the command runs
                holder = subprocess.Popen([DOTLOCKFILE, "-p", "-l", str(lock), "sleep", "600"],
                                          start_new_session=True)
                end = time.monotonic() + 30
                while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < end:
                    time.sleep(0.05)
                assert lock.read_text().strip() == str(holder.pid)
            cfg = pt.write_config(d / "config", pt.account_config(
                dc, user, state=d / "state.db", deliver=f"mbox {d / 'inbox.mbox'}"))
            t0 = time.monotonic()
            runs.append((user, t0, subprocess.Popen(
                [str(popsift), "-f", str(cfg), "run"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)))
        for user, t0, p in runs:
            out, err = p.communicate(timeout=300)
            took = time.monotonic() - t0
            assert p.returncode == 75, (user, err)
            assert took >= 55, (user, took)   # waited, did not break it
            assert dc.count(user) == 1, user
            assert delivered(tmp / user) == 0
            want = "no process id" if user == "alice" else f"held by process {holder.pid}"
            assert want in err, (user, err)
            assert (tmp / user / "inbox.mbox.lock").exists()
    finally:
        if holder:
            os.killpg(holder.pid, 9)
            holder.wait()


@need_lockfile
def test_old_lock_without_a_pid_is_broken(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("a"))
    lock = tmp / "inbox.mbox.lock"
    lock_with_lockfile(lock)
    old = time.time() - 1100   # past procmail's LOCKTIMEOUT (1024 s)
    os.utime(lock, (old, old))
    r = run("-f", config(), "run")
    assert r.returncode == 0, r.stderr
    assert delivered(tmp) == 1 and dovecot.count("alice") == 0
    assert not lock.exists()


@need_dotlockfile
def test_lock_of_a_dead_process_is_broken(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("a"))
    lock = tmp / "inbox.mbox.lock"
    # without a command, dotlockfile -p writes its caller's pid: a shell that
    # then exits leaves a lock whose owner is gone
    subprocess.run(["/bin/sh", "-c", f'"{DOTLOCKFILE}" -p -l "{lock}"; exit 0'], check=True)
    pid = int(lock.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    t0 = time.monotonic()
    r = run("-f", config(), "run")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 30
    assert delivered(tmp) == 1 and not lock.exists()
