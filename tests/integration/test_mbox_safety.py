"""Issue 13: local deliveries against crashes, other programs and other
local users.

- Crash recovery of an mbox cuts only the unfinished batch's messages
  (their From_ lines carry the batch's token), never mail another program
  or another account appended after a kill -9; a file that shrank or was
  replaced is left alone.
- Maildir recovery finds the batch's files in cur/ too, and fails honestly
  when it cannot remove one.
- New mboxes and Maildirs are durable (directory fsyncs, checked); a tmp
  file popsift did not create is never removed.
- No delivery through a planted symlink (mbox, dotlock temp file,
  Maildir subdirectory), no foreign-owned or hard-linked mbox.
- mboxrd quoting of any run of '>'.
"""

import fcntl
import os
import re
import sqlite3
import subprocess
import time

import pytest

import popsift_test as pt

ACCOUNT = "fake"


def make_messages(n, tag="m"):
    return [b"From: sender%d@example.org\n"
            b"To: alice@example.org\n"
            b"Subject: %s message %d\n"
            b"Message-ID: <%s.%d@fakepop.test>\n"
            b"\n"
            b"Body of %s %d.\n"
            b"From here on, a line starting with From.\n"
            % (i, tag.encode(), i, tag.encode(), i, tag.encode(), i)
            for i in range(1, n + 1)]


def show(r):
    return f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def delivered(path):
    return [pt.strip_header(m, "Received") for m in pt.mbox_messages(path)]


def write_config(tmp, *accounts, state=None):
    """accounts: (name, server, deliver) triples, one config."""
    text = ""
    for k, (name, srv, deliver) in enumerate(accounts):
        text += pt.account_config(srv, "alice", name=name, tls="off", auth="user",
                                  timeout=5, deliver=deliver,
                                  state=(state or tmp / "state.db") if k == 0 else None)
    return pt.write_config(tmp / "config", text)


def wait_for(cond, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def start_and_kill_after(popsift, cfg, mbox, n, *args):
    """Start `popsift run`, wait until n whole messages are in mbox (the
    server stalls in the next one), then kill -9 it."""
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "run", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(pt.mbox_messages(mbox)) >= n
                 and mbox.read_bytes().endswith(b"\n\n"), f"{n} messages in {mbox}")
    finally:
        p.kill()
        p.communicate(timeout=30)
    return p


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def locked_append(path, data, timeout=30.0):
    """Append as procmail does: a dotlock (a stale one, whose pid is gone,
    is removed), an fcntl lock, then the write."""
    lock = f"{path}.lock"
    tmpname = f"{lock}.test{os.getpid()}"
    with open(tmpname, "w") as f:
        f.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.link(tmpname, lock)
            break
        except FileExistsError:
            try:
                pid = int(open(lock).read().strip() or 0)
            except (FileNotFoundError, ValueError):
                pid = 0
            if pid > 0 and not pid_alive(pid):
                os.unlink(lock)
                continue
            assert time.monotonic() < deadline, f"{lock} held by live pid {pid}"
            time.sleep(0.05)
    os.unlink(tmpname)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        os.unlink(lock)


FOREIGN = (b"From postmaster@example.net Wed Dec  2 08:00:00 2026\n"
           b"From: postmaster@example.net\nSubject: appended by the MTA\n"
           b"Message-ID: <foreign@example.net>\n\nDelivered by another program.\n\n")


# --------------------------------------------------------------------------
# 1. the way a user hits it: kill -9 mid-batch, then a locked append

def test_kill_mid_batch_then_locked_append_keeps_foreign_mail(fake, popsift, run, tmp):
    msgs = make_messages(5)
    srv = fake(msgs, stall="RETR", stall_msg=3, faulty_sessions={1})
    mbox = tmp / "inbox.mbox"
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {mbox}"))
    start_and_kill_after(popsift, cfg, mbox, 2)
    assert srv.count() == 5 and not srv.deleted

    locked_append(mbox, FOREIGN)
    r = run("-f", cfg, "run", timeout=60)
    assert r.returncode == 0, show(r)
    got = delivered(mbox)
    foreign = FOREIGN.split(b"\n", 1)[1][:-1]
    assert got.count(foreign) == 1, "the message another program appended was cut\n" + show(r)
    assert sorted(m for m in got if m != foreign) == sorted(msgs), show(r)
    assert srv.count() == 0


def test_two_accounts_one_mbox_recovery_keeps_the_other_accounts_mail(fake, popsift, run,
                                                                      tmp):
    a_msgs, b_msgs = make_messages(4, "a"), make_messages(3, "b")
    a = fake(a_msgs, stall="RETR", stall_msg=3, faulty_sessions={1})
    b = fake(b_msgs)
    mbox = tmp / "lists.mbox"
    cfg = write_config(tmp, ("a", a, f"mbox {mbox}"), ("b", b, f"mbox {mbox}"))
    start_and_kill_after(popsift, cfg, mbox, 2, "a")

    r = run("-f", cfg, "run", "b", timeout=60)
    assert r.returncode == 0, show(r)
    assert b.count() == 0, "b delivered, committed and deleted its mail"
    r = run("-f", cfg, "run", "a", timeout=60)
    assert r.returncode == 0, show(r)
    got = delivered(mbox)
    assert sorted(got) == sorted(a_msgs + b_msgs), \
        "a's recovery must keep b's committed mail, and deliver a's once\n" + show(r)
    assert a.count() == 0


# --------------------------------------------------------------------------
# 1. recovery of an mbox, case by case (a journal as a killed run leaves it)

TOKEN = "0123456789abcdef"
BEFORE = (b"From old@example.org Tue Dec  1 10:00:00 2026\n"
          b"Subject: committed long ago\n\nold mail\n\n")


def rec(tag, token=TOKEN, text=b"From here to there"):
    return (b"From x@example.org Wed Dec  2 08:00:00 2026 popsift=%s\n"
            b"Subject: %s\n\nbody of %s, %s\n>From a quoted line\n\n"
            % (token.encode(), tag, tag, text))


# a message whose text holds what looks like a From_ line mid-line
LOOKS_GLUED = rec(b"m2", text=b"see From x@example.org Wed Dec  2 08:00:00 2026 in a line")


M2 = rec(b"m2")
AT_LINE_END = M2[:M2.index(b"\n\n") + 1]      # cut after its header
MID_LINE = M2[:M2.index(b"body of") + 4]      # cut in the middle of a line


def journal(tmp, path, offset, token=TOKEN, dev_ino=True, kind="mbox"):
    """The row a batch writes before its first byte (without the file's
    device and inode on a schema that has no room for them)."""
    st = os.lstat(path) if dev_ino else None
    with sqlite3.connect(tmp / "state.db") as db:
        cols = [c[1] for c in db.execute("PRAGMA table_info(journal)")]
        row = {"account": ACCOUNT, "kind": kind, "path": str(path), "offset": offset,
               "prefix": token, "created": int(time.time())}
        if "dev" in cols:
            row.update(dev=st.st_dev if st else None, ino=st.st_ino if st else None)
        db.execute(f"INSERT INTO journal({','.join(row)}) VALUES({','.join('?' * len(row))})",
                   tuple(row.values()))


def journal_rows(tmp):
    with sqlite3.connect(tmp / "state.db") as db:
        return db.execute("SELECT count(*) FROM journal").fetchone()[0]


@pytest.fixture
def empty_run(fake, run, tmp):
    """A config on an empty server; the first run makes the state."""
    srv = fake([])
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {tmp / 'inbox.mbox'}"))
    r = run("-f", cfg, "run")
    assert r.returncode == 0, show(r)

    def again():
        r = run("-f", cfg, "-v", "run", timeout=60)
        assert r.returncode == 0, show(r)
        assert journal_rows(tmp) == 0
        return r
    return again


CASES = {
    # name: (batch bytes, bytes after them, what must stay after BEFORE)
    "ours-only": (rec(b"m1") + rec(b"m2"), b"", b""),
    "foreign-after": (rec(b"m1") + rec(b"m2"), FOREIGN, FOREIGN),
    "partial-at-line-end-then-foreign": (rec(b"m1") + AT_LINE_END, FOREIGN, FOREIGN),
    "partial-at-eof": (rec(b"m1") + MID_LINE, b"", b""),
    # cut mid-line, another program's From_ line glued on: that message
    # cannot be told apart, so it stays (a duplicate beats a loss)
    "partial-glued": (rec(b"m1") + MID_LINE, FOREIGN, MID_LINE + FOREIGN),
    "nothing-of-ours": (b"", FOREIGN, FOREIGN),
    # the last message cannot be told from a glued one: it stays
    "last-looks-glued": (rec(b"m1") + LOOKS_GLUED, b"", LOOKS_GLUED),
    "another-batch-token": (b"", rec(b"o1", "fedcba9876543210"), rec(b"o1", "fedcba9876543210")),
}


@pytest.mark.parametrize("case", CASES)
def test_mbox_recovery_cuts_only_the_batch(empty_run, tmp, case):
    ours, after, keep = CASES[case]
    mbox = tmp / "inbox.mbox"
    mbox.write_bytes(BEFORE + ours)
    journal(tmp, mbox, len(BEFORE))
    with open(mbox, "ab") as f:
        f.write(after)
    empty_run()
    assert mbox.read_bytes() == BEFORE + keep


def test_mbox_recovery_leaves_a_shrunk_file_alone(empty_run, tmp):
    mbox = tmp / "inbox.mbox"
    mbox.write_bytes(BEFORE + rec(b"m1"))
    journal(tmp, mbox, len(BEFORE + rec(b"m1")) + 40)   # a mail client expunged since
    r = empty_run()
    assert mbox.read_bytes() == BEFORE + rec(b"m1")
    assert "shrank" in r.stderr, show(r)


def test_mbox_recovery_leaves_another_file_alone(empty_run, tmp):
    mbox = tmp / "inbox.mbox"
    mbox.write_bytes(BEFORE + rec(b"m1"))
    journal(tmp, mbox, len(BEFORE))
    content = mbox.read_bytes()
    # a mail client rewrote the mbox into a new file (another inode)
    new = tmp / "inbox.mbox.new"
    new.write_bytes(content + FOREIGN)
    keep = tmp / "keep"
    os.link(mbox, keep)                      # the old inode cannot be reused
    os.rename(new, mbox)
    r = empty_run()
    assert mbox.read_bytes() == content + FOREIGN
    assert "another file" in r.stderr, show(r)


def test_mbox_recovery_without_token_keeps_everything(empty_run, tmp):
    """A journal row of an older popsift (no token, no inode) proves nothing."""
    mbox = tmp / "inbox.mbox"
    mbox.write_bytes(BEFORE + rec(b"m1"))
    journal(tmp, mbox, len(BEFORE), token=None, dev_ino=False)
    empty_run()
    assert mbox.read_bytes() == BEFORE + rec(b"m1")


def test_mbox_recovery_never_follows_a_symlink(empty_run, tmp):
    victim = tmp / "victim"
    victim.write_bytes(BEFORE + rec(b"m1"))
    mbox = tmp / "inbox.mbox"
    journal(tmp, victim, len(BEFORE))
    with sqlite3.connect(tmp / "state.db") as db:
        db.execute("UPDATE journal SET path=?", (str(mbox),))
    os.symlink(victim, mbox)
    empty_run()
    assert victim.read_bytes() == BEFORE + rec(b"m1")


# --------------------------------------------------------------------------
# 2. Maildir recovery: cur/ too, and an honest failure

def maildir(tmp):
    d = tmp / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    return d


PREFIX = "1764662400.M123456P4242"


def test_maildir_recovery_finds_files_a_client_moved_to_cur(fake, run, tmp):
    srv = fake([])
    d = maildir(tmp)
    cfg = write_config(tmp, (ACCOUNT, srv, f"maildir {d}"))
    assert run("-f", cfg, "run").returncode == 0
    (d / "new" / f"{PREFIX}Q1.host,S=10").write_bytes(b"m1\n")
    (d / "cur" / f"{PREFIX}Q2.host,S=10:2,S").write_bytes(b"m2\n")   # seen by a client
    other = d / "cur" / "1764662400.M999999P1.host,S=10:2,S"
    other.write_bytes(b"someone else's\n")
    journal(tmp, d, 0, token=PREFIX, kind="maildir")
    r = run("-f", cfg, "run")
    assert r.returncode == 0, show(r)
    assert sorted(p.name for p in (d / "cur").iterdir()) == [other.name], show(r)
    assert list((d / "new").iterdir()) == []


def test_maildir_recovery_that_cannot_remove_fails(fake, run, tmp):
    srv = fake([])
    d = maildir(tmp)
    cfg = write_config(tmp, (ACCOUNT, srv, f"maildir {d}"))
    r = run("-f", cfg, "run")                 # creates the database
    assert r.returncode == 0, show(r)
    stuck = d / "new" / f"{PREFIX}Q1.host,S=10"
    stuck.mkdir()
    (stuck / "x").write_bytes(b"x")          # unlink() fails: EISDIR
    srv.add(make_messages(1)[0], "uid-1")
    journal(tmp, d, 0, token=PREFIX, kind="maildir")
    r = run("-f", cfg, "run")
    assert r.returncode == 75, show(r)
    assert "recovery" in r.stderr and str(stuck) in r.stderr, show(r)
    assert srv.count() == 1, "nothing may be fetched while recovery failed"
    assert journal_rows(tmp) == 1, "the journal stays for the next run"


# --------------------------------------------------------------------------
# 3. durability: directory fsyncs; a tmp file that is not ours

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* FSYNC_LOG: append the path of every fsync'd directory;
 * FSYNC_FAIL: fail (EIO) an fsync of that directory;
 * PLANT_IN: before an O_EXCL open of a file in that directory, another
 * program creates the same name first. */
int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	char p[64], path[4096];
	struct stat st;
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, path, sizeof path - 1);
	if (n > 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		path[n] = '\0';
		const char *log = getenv("FSYNC_LOG"), *fail = getenv("FSYNC_FAIL");
		if (log) {
			FILE *f = fopen(log, "a");
			if (f) {
				fprintf(f, "%s\n", path);
				fclose(f);
			}
		}
		if (fail && strcmp(fail, path) == 0) {
			errno = EIO;
			return -1;
		}
	}
	return real(fd);
}

static void plant(const char *path, int flags)
{
	const char *dir = getenv("PLANT_IN");
	size_t n = dir ? strlen(dir) : 0;
	if (!dir || !(flags & O_EXCL) || strncmp(path, dir, n) != 0 || path[n] != '/')
		return;
	FILE *f = fopen(path, "w");
	if (f) {
		fputs("planted by another program\n", f);
		fclose(f);
	}
}

int open(const char *path, int flags, ...)
{
	static int (*real)(const char *, int, ...);
	if (!real)
		real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	va_list ap;
	va_start(ap, flags);
	mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
	va_end(ap);
	plant(path, flags);
	return real(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	static int (*real)(const char *, int, ...);
	if (!real)
		real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
	va_list ap;
	va_start(ap, flags);
	mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
	va_end(ap);
	plant(path, flags);
	return real(path, flags, mode);
}
"""


@pytest.fixture
def shim(tmp):
    return pt.preload_shim(tmp, "shim", SHIM)


def test_new_maildir_directories_are_synced(fake, run, tmp, shim):
    msgs = make_messages(1)
    srv = fake(msgs)
    d = tmp / "Mail" / "lists" / "debian"
    cfg = write_config(tmp, (ACCOUNT, srv, f"maildir {d}"))
    log = tmp / "fsync.log"
    r = run("-f", cfg, "run", env={**shim, "FSYNC_LOG": log})
    assert r.returncode == 0, show(r)
    synced = set(log.read_text().split())
    want = {str(tmp), str(tmp / "Mail"), str(tmp / "Mail" / "lists"), str(d),
            str(d / "tmp"), str(d / "new"), str(d / "cur")}
    assert want <= synced, f"not synced: {sorted(want - synced)}"
    assert len(pt.maildir_messages(d)) == 1


def test_new_mbox_directories_are_synced(fake, run, tmp, shim):
    msgs = make_messages(1)
    srv = fake(msgs)
    mbox = tmp / "Mail" / "lists" / "debian.mbox"
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {mbox}"))
    log = tmp / "fsync.log"
    r = run("-f", cfg, "run", env={**shim, "FSYNC_LOG": log})
    assert r.returncode == 0, show(r)
    synced = set(log.read_text().split())
    want = {str(tmp), str(tmp / "Mail"), str(tmp / "Mail" / "lists")}
    assert want <= synced, f"not synced: {sorted(want - synced)}"
    assert delivered(mbox) == msgs


def test_failed_directory_sync_of_a_new_mbox_is_an_error(fake, run, tmp, shim):
    msgs = make_messages(2)
    srv = fake(msgs)
    (tmp / "mail").mkdir()
    (tmp / "state").mkdir()
    mbox = tmp / "mail" / "inbox.mbox"
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {mbox}"), state=tmp / "state" / "state.db")
    r = run("-f", cfg, "run", env={**shim, "FSYNC_FAIL": tmp / "mail"})
    assert r.returncode == 75, show(r)
    assert "cannot sync" in r.stderr and str(tmp / "mail") in r.stderr, show(r)
    assert srv.count() == 2, "mail whose mbox is not durable must stay on the server"
    r = run("-f", cfg, "run")
    assert r.returncode == 0, show(r)
    assert sorted(delivered(mbox)) == sorted(msgs)


def test_maildir_tmp_file_of_another_program_is_not_removed(fake, run, tmp, shim):
    msgs = make_messages(1)
    srv = fake(msgs)
    d = maildir(tmp)
    cfg = write_config(tmp, (ACCOUNT, srv, f"maildir {d}"))
    r = run("-f", cfg, "run", env={**shim, "PLANT_IN": d / "tmp"})
    assert r.returncode == 75, show(r)
    planted = list((d / "tmp").iterdir())
    assert len(planted) == 1 and planted[0].read_bytes() == b"planted by another program\n", \
        "a tmp file popsift did not create was removed\n" + show(r)
    assert srv.count() == 1


# --------------------------------------------------------------------------
# 4. other local users: planted links, foreign owners, hard links

def test_symlink_at_the_mbox_path_is_refused(fake, run, tmp):
    msgs = make_messages(2)
    srv = fake(msgs)
    victim = tmp / "victim"
    victim.write_bytes(b"root's file\n")
    mbox = tmp / "inbox.mbox"
    os.symlink(victim, mbox)
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {mbox}"))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, show(r)
    assert victim.read_bytes() == b"root's file\n"
    assert re.search(rf"refusing mbox {re.escape(str(mbox))}: it is a symbolic link",
                     r.stderr), show(r)
    assert srv.count() == 2


def test_dangling_symlink_at_the_mbox_path_is_refused(fake, run, tmp):
    srv = fake(make_messages(1))
    victim = tmp / "created-through-the-link"
    mbox = tmp / "inbox.mbox"
    os.symlink(victim, mbox)
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {mbox}"))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, show(r)
    assert not victim.exists()
    assert srv.count() == 1


def test_symlink_at_the_dotlock_temp_name_is_not_followed(fake, popsift, tmp):
    """The temp file of the dotlock used to be <mbox>.lock.<pid>.tmp, opened
    with O_TRUNC: a link planted there (by pid) made root truncate any
    file.  The shell plants it for its own pid, then execs popsift."""
    msgs = make_messages(2)
    srv = fake(msgs)
    victim = tmp / "victim"
    victim.write_bytes(b"root's file\n")
    mbox = tmp / "inbox.mbox"
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {mbox}"))
    r = subprocess.run(["/bin/sh", "-c", 'ln -s "$1" "$2.lock.$$.tmp" && exec "$3" -f "$4" run',
                        "sh", str(victim), str(mbox), str(popsift), str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert victim.read_bytes() == b"root's file\n", "written through a planted link"
    assert r.returncode == 0, show(r)
    assert sorted(delivered(mbox)) == sorted(msgs)
    assert not (tmp / "inbox.mbox.lock").exists()


def test_mbox_of_another_user_is_refused(fake, run, tmp):
    srv = fake(make_messages(1))
    mbox = tmp / "inbox.mbox"
    mbox.write_bytes(b"")
    os.chown(mbox, 12345, 12345)
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {mbox}"))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, show(r)
    assert f"refusing mbox {mbox}: owned by uid 12345" in r.stderr, show(r)
    assert mbox.read_bytes() == b"" and srv.count() == 1


def test_hard_linked_mbox_is_refused(fake, run, tmp):
    srv = fake(make_messages(1))
    victim = tmp / "victim"
    victim.write_bytes(b"root's file\n")
    mbox = tmp / "inbox.mbox"
    os.link(victim, mbox)
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {mbox}"))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, show(r)
    assert "hard links" in r.stderr, show(r)
    assert victim.read_bytes() == b"root's file\n" and srv.count() == 1


def test_symlinked_maildir_subdirectory_is_refused(fake, run, tmp):
    srv = fake(make_messages(1))
    d = tmp / "Maildir"
    (d / "tmp").mkdir(parents=True)
    (d / "cur").mkdir()
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, d / "new")
    cfg = write_config(tmp, (ACCOUNT, srv, f"maildir {d}"))
    r = run("-f", cfg, "run")
    assert r.returncode == 75, show(r)
    assert f"refusing Maildir {d / 'new'}: it is a symbolic link" in r.stderr, show(r)
    assert list(elsewhere.iterdir()) == [] and srv.count() == 1


# --------------------------------------------------------------------------
# 5. mboxrd quoting of any run of '>'

@pytest.mark.parametrize("ngt", [72, 73, 200, 5000])
def test_long_run_of_gt_before_from_is_quoted(fake, run, tmp, ngt):
    line = b">" * ngt + b"From the deep\n"
    msg = make_messages(1)[0] + line + b"end\n"
    srv = fake([msg])
    mbox = tmp / "inbox.mbox"
    cfg = write_config(tmp, (ACCOUNT, srv, f"mbox {mbox}"))
    r = run("-f", cfg, "run")
    assert r.returncode == 0, show(r)
    assert b"\n>" + line in mbox.read_bytes()
    assert delivered(mbox) == [msg]
