"""Issue 13, the core: losses and duplicates found by reading fetch*.c,
state.c and util.c, each shown the way a user would meet it (see
doc/crash-safety.md for the contract these tests hold popsift to)."""
import sqlite3
import subprocess
import time

import popsift_test as pt


def _msg(n, mid=None):
    mid = mid or f"<m{n}@core>"
    return (f"Message-ID: {mid}\nFrom: a@example.org\nSubject: kept {n}\n\n"
            f"body {n}\n").encode()


def _subjects(mbox):
    return sorted(pt.header_values(m, "Subject")[0] for m in pt.mbox_messages(mbox))


# ---- 1. keep yes + `match duplicate discard` + run --all ----

def test_keep_all_refetch_with_duplicate_rule_delivers_and_keeps(dovecot, config, run, tmp):
    """The manual's own rule on a kept mailbox refetched with --all: every
    message is delivered again (its own earlier delivery is not a
    duplicate) and none leaves the server."""
    rules = tmp / "dup.rules"
    rules.write_text("match duplicate discard\n")
    mbox = tmp / "inbox.mbox"
    dovecot.add_messages("alice", [_msg(n) for n in (1, 2, 3)])
    cfg = config(keep="yes", rules=rules)
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert len(pt.mbox_messages(mbox)) == 3 and dovecot.count("alice") == 3
    mbox.unlink()
    r = run("-f", cfg, "-v", "run", "--all")
    assert r.returncode == 0, r.stderr
    assert dovecot.count("alice") == 3, "a kept message was deleted\n" + r.stderr
    assert _subjects(mbox) == ["kept 1", "kept 2", "kept 3"], r.stderr
    # a real duplicate (another message, same Message-ID) is still discarded,
    # and a rule's discard is the one thing that deletes under keep
    dovecot.add_message("alice", _msg(4, mid="<m1@core>"))
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert len(pt.mbox_messages(mbox)) == 3
    assert dovecot.count("alice") == 3


# ---- helpers: a commit the state database refuses, journal rows ----

FAIL_COMMIT = ("CREATE TRIGGER test_refuse BEFORE INSERT ON messages "
               "BEGIN SELECT RAISE(ABORT, 'test: commit refused'); END;")


def _db(path, sql=None, args=()):
    con = sqlite3.connect(path)
    try:
        rows = con.execute(sql, args).fetchall() if sql else None
        con.commit()
        return rows
    finally:
        con.close()


def _make_state(run, cfg, state):
    """A state database as popsift creates it, before any fetch."""
    r = run("-f", cfg, "status")
    assert state.exists(), r.stderr


def _plant(state, account, kind, path, offset=0, prefix=None):
    _db(state, "INSERT INTO journal(account,kind,path,offset,prefix,created) "
        "VALUES(?,?,?,?,?,0)", (account, kind, str(path), offset, prefix))


TOKEN = "0123456789abcdef"


def _crashed_batch(state, mbox, before=b""):
    """An mbox holding `before` and then one message of a batch that died,
    journaled the way popsift journals it (token, device, inode)."""
    mbox.write_bytes(before + b"From x@example.org Wed Dec  2 08:00:00 2026 popsift=%s\n"
                     b"Subject: half a batch\n\nbody\n\n" % TOKEN.encode())
    mbox.chmod(0o600)
    st = mbox.stat()
    _plant(state, "test", "mbox", mbox, offset=len(before), prefix=TOKEN)
    _db(state, "UPDATE journal SET dev=?, ino=? WHERE path=?", (st.st_dev, st.st_ino, str(mbox)))


def _journal(state):
    return [(k, p) for k, p in _db(state, "SELECT kind,path FROM journal ORDER BY id")]


# ---- 2. a failed batch rolls back while it still holds the mbox lock ----

LOCKED_APPEND = r"""
import fcntl, os, sys, time
path, out = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 60
while not (os.path.exists(path) and os.path.getsize(path) > 0):
    if time.monotonic() > deadline:
        sys.exit("popsift never wrote " + path)
    time.sleep(0.01)
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
fcntl.lockf(fd, fcntl.LOCK_EX)     # blocks while popsift holds its batch lock
os.write(fd, b"From other@example.org Thu Jan  1 00:00:00 2026\nSubject: from the MTA\n\nmine\n\n")
os.fsync(fd)
fcntl.lockf(fd, fcntl.LOCK_UN)
open(out, "w").write("appended")
"""


SLOW_ACCESS = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <unistd.h>
/* access() to *.mbox takes a second: the old rollback (release the lock,
 * then reopen, relock and cut) left a window that wide to the waiter */
int access(const char *path, int mode)
{
	size_t n = strlen(path);
	if (n > 5 && strcmp(path + n - 5, ".mbox") == 0)
		usleep(1000000);
	int (*real)(const char *, int) = (int (*)(const char *, int))dlsym(RTLD_NEXT, "access");
	return real(path, mode);
}
"""


def test_failed_batch_rolls_back_under_its_lock(fake, run, tmp):
    """A batch whose commit fails takes its mbox writes back before it
    releases the lock: a program waiting on the lock (the MTA) appends
    after the rollback, and its message survives."""
    env = pt.preload_shim(tmp, "slowaccess", SLOW_ACCESS)
    mbox, state = tmp / "inbox.mbox", tmp / "state.db"
    srv = fake([_msg(1), _msg(2)], stall="RETR", stall_msg=2, faulty_sessions={1})
    cfg = pt.write_config(tmp / "config", pt.account_config(
        srv, "alice", tls="off", auth="user", timeout=5, state=state, deliver=f"mbox {mbox}"))
    _make_state(run, cfg, state)
    _db(state, FAIL_COMMIT)
    (tmp / "waiter.py").write_text(LOCKED_APPEND)
    done = tmp / "appended"
    waiter = subprocess.Popen(["/usr/bin/python3", str(tmp / "waiter.py"), str(mbox), str(done)])
    try:
        r = run("-f", cfg, "-v", "run", env=env)
        assert waiter.wait(timeout=60) == 0
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert r.returncode != 0, r.stderr
    assert done.exists()
    got = pt.mbox_messages(mbox)
    assert [pt.header_values(m, "Subject")[0] for m in got] == ["from the MTA"], \
        f"the MTA's message was cut or the batch stayed:\n{r.stderr}"
    assert _journal(state) == [], "the undone batch's journal entry stays"
    _db(state, "DROP TRIGGER test_refuse")
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert _subjects(mbox) == ["from the MTA", "kept 1", "kept 2"]


def test_failed_batch_to_maildir_leaves_no_file_and_no_journal(fake, run, tmp):
    """The Maildir side of the rollback: a refused commit leaves no file of
    the batch in tmp/ or new/ and no journal row; the rerun delivers once."""
    md, state = tmp / "Maildir", tmp / "state.db"
    srv = fake([_msg(1), _msg(2)])
    cfg = pt.write_config(tmp / "config", pt.account_config(
        srv, "alice", tls="off", auth="user", state=state, deliver=f"maildir {md}"))
    _make_state(run, cfg, state)
    _db(state, FAIL_COMMIT)
    r = run("-f", cfg, "run")
    assert r.returncode != 0, r.stderr
    assert pt.maildir_files(md) == [] and not list((md / "tmp").iterdir()), r.stderr
    assert _journal(state) == [] and srv.count() == 2
    _db(state, "DROP TRIGGER test_refuse")
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    got = sorted(pt.header_values(m, "Subject")[0] for m in pt.maildir_messages(md))
    assert got == ["kept 1", "kept 2"] and srv.count() == 0


# ---- 3. the journal stays until its recovery succeeded ----

FAIL_FTRUNCATE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
/* ftruncate fails with EIO on *.mbox only (SQLite needs its own) */
static int is_mbox(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n < 5)
		return 0;
	path[n] = 0;
	return strcmp(path + n - 5, ".mbox") == 0;
}
#define SHIM(name) int name(int fd, off_t len) { \
	if (is_mbox(fd)) { errno = EIO; return -1; } \
	int (*real)(int, off_t) = (int (*)(int, off_t))dlsym(RTLD_NEXT, #name); \
	return real(fd, len); }
SHIM(ftruncate)
SHIM(ftruncate64)
"""


def test_failed_rollback_keeps_the_journal(fake, run, tmp):
    """A failed batch whose rollback fails too (ftruncate: EIO) keeps its
    journal entry, so the next run undoes it: each message lands once."""
    env = pt.preload_shim(tmp, "noftruncate", FAIL_FTRUNCATE)
    mbox, state = tmp / "inbox.mbox", tmp / "state.db"
    srv = fake([_msg(1), _msg(2), _msg(3)])
    cfg = pt.write_config(tmp / "config", pt.account_config(
        srv, "alice", tls="off", auth="user", state=state, deliver=f"mbox {mbox}"))
    _make_state(run, cfg, state)
    _db(state, FAIL_COMMIT)
    r = run("-f", cfg, "run", env=env)
    assert r.returncode != 0, r.stderr
    assert len(pt.mbox_messages(mbox)) == 3     # written, not taken back
    assert _journal(state) == [("mbox", str(mbox))], r.stderr
    _db(state, "DROP TRIGGER test_refuse")
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert _subjects(mbox) == ["kept 1", "kept 2", "kept 3"], "duplicates after a failed rollback"
    assert srv.count() == 0 and _journal(state) == []


def test_recovery_drops_each_row_only_once_undone(fake, run, tmp):
    """Recovery that fails on one row fails the run (naming the path),
    fetches nothing, keeps that row, and never redoes a row it undid."""
    md, bad, state = tmp / "Maildir", tmp / "other.mbox", tmp / "state.db"
    srv = fake([_msg(1)])
    cfg = pt.write_config(tmp / "config", pt.account_config(
        srv, "alice", tls="off", auth="user", state=state, deliver=[f"maildir {md}", f"mbox {bad}"]))
    _make_state(run, cfg, state)
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    left = md / "new" / "1700000000.M1P1Q1.host"
    left.write_bytes(_msg(9))
    _plant(state, "test", "maildir", md, prefix="1700000000.M1P1")
    # a crashed batch's message in the mbox, journaled as popsift journals
    # it (token, device, inode); cutting it fails: ftruncate gives EIO
    _crashed_batch(state, bad)
    r = run("-f", cfg, "run", env=pt.preload_shim(tmp, "noftruncate", FAIL_FTRUNCATE))
    assert r.returncode == 75, r.stderr
    assert str(bad) in r.stderr and "test" in r.stderr, r.stderr
    assert not left.exists()
    assert _journal(state) == [("mbox", str(bad))], "an undone row was kept, or the failed one dropped"
    assert srv.count() == 1 and not srv.commands("RETR")
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert _journal(state) == [] and srv.count() == 0
    assert b"half a batch" not in bad.read_bytes()


# ---- 4. recovery touches only this configuration's destinations ----

def test_planted_journal_row_cannot_cut_a_foreign_file(fake, run, tmp):
    """A journal row naming a file that is no destination of the account
    (planted by whoever could write the database) is refused: the file
    stays whole, the row stays, nothing is fetched."""
    mbox, state, victim = tmp / "inbox.mbox", tmp / "state.db", tmp / "precious"
    victim.write_bytes(b"x" * 1000)
    srv = fake([_msg(1)])
    rules = tmp / "r.rules"
    rules.write_text(f'match header "Subject" =~ /kept (\\d)/  mbox {tmp}/lists/$1\n')
    cfg = pt.write_config(tmp / "config", pt.account_config(
        srv, "alice", tls="off", auth="user", state=state, deliver=f"mbox {mbox}", rules=rules))
    _make_state(run, cfg, state)
    for planted in (victim, tmp / "lists" / ".." / "precious"):
        _plant(state, "test", "mbox", planted, offset=10)
        r = run("-f", cfg, "run")
        assert r.returncode == 75, r.stderr
        assert str(planted) in r.stderr and "not a destination" in r.stderr, r.stderr
        assert victim.stat().st_size == 1000, "recovery cut a file that is no destination"
        assert _journal(state) == [("mbox", str(planted))]
        assert srv.count() == 1 and not srv.commands("RETR")
        _db(state, "DELETE FROM journal")
    # a rule's destination ($1 expanded under tmp/lists) is recovered
    lists = tmp / "lists"
    lists.mkdir()
    _crashed_batch(state, lists / "7", before=b"y" * 40)
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert (lists / "7").read_bytes() == b"y" * 40 and _journal(state) == []


# ---- 5. a password command that writes a lot ----

def test_password_command_writing_100k_does_not_hang(fake, run, tmp):
    """The first line is the password; 100 KB after it (more than a pipe
    holds) is read and dropped, not left to block the command forever."""
    pw = tmp / "pw.sh"
    pw.write_text("#!/bin/sh\nprintf 'secret\\n'\nhead -c 100000 /dev/zero | tr '\\0' x\n"
                  "printf '\\n'\n")
    pw.chmod(0o700)
    srv = fake([_msg(1)])
    cfg = pt.write_config(tmp / "config", pt.account_config(
        srv, "alice", tls="off", auth="user", password=None, password_command=str(pw),
        state=tmp / "state.db", deliver=f"mbox {tmp / 'inbox.mbox'}"))
    t0 = time.monotonic()
    r = run("-f", cfg, "run", timeout=60)
    assert r.returncode == 0, f"after {time.monotonic() - t0:.0f} s: {r.stderr}"
    assert _subjects(tmp / "inbox.mbox") == ["kept 1"]


# ---- 6. status counts what a killed poll committed ----

def test_status_today_counts_a_run_killed_after_its_commit(fake, popsift, run, tmp):
    """kill -9 after the batch commit (the server stalls on QUIT): the run
    row was written with the commit, so `status` counts today's mail."""
    srv = fake([_msg(1), _msg(2)], stall="QUIT")
    cfg = pt.write_config(tmp / "config", pt.account_config(
        srv, "alice", tls="off", auth="user", timeout=60, state=tmp / "state.db",
        deliver=f"mbox {tmp / 'inbox.mbox'}"))
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "run"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not srv.commands("QUIT") and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert srv.commands("QUIT"), "popsift never sent QUIT"
    finally:
        p.kill()
        p.wait()
    assert _subjects(tmp / "inbox.mbox") == ["kept 1", "kept 2"]
    r = run("-f", cfg, "status")
    assert r.returncode == 0, r.stderr
    assert "today      2 messages" in r.stdout, r.stdout
    assert "2 delivered" in r.stdout and "killed" in r.stdout, r.stdout
