"""Fault injection: popsift against tests/lib/fakepop.py, a scripted POP3
server that drops, stalls, lies and misbehaves on demand (issues 2 and 6).

Every popsift test checks three things: the exit code (DESIGN.md: 69
server misbehaving, 75 temporary failure), that the error names the account
(stderr lines start with "fake: "), and the never-lose / never-duplicate
property: each message is in the mbox exactly once or still on the server,
and after a rerun against a well-behaved server every message is in the
mbox exactly once and the server is empty.

The FakePop self-tests at the end check the fake server's knobs with a raw
socket, without popsift.
"""

import socket
import sqlite3
import sys
import time

import pytest

import popsift_test as pt
from fakepop import FakePop

ACCOUNT = "fake"


# --------------------------------------------------------------------------
# helpers

def make_messages(n, tag="m", body=b""):
    """n distinct small messages with LF line ends (as delivered on disk)."""
    out = []
    for i in range(1, n + 1):
        out.append(b"From: sender%d@example.org\n"
                   b"To: alice@example.org\n"
                   b"Subject: %s message %d\n"
                   b"Message-ID: <%s.%d@fakepop.test>\n"
                   b"\n"
                   b"Body of %s %d.\n"
                   b".a line starting with a dot\n"
                   b"From here on, a line starting with From.\n"
                   % (i, tag.encode(), i, tag.encode(), i, tag.encode(), i) + body)
    return out


@pytest.fixture
def fconfig(tmp):
    """fconfig(srv, **keys) -> config path for account 'fake' on srv
    (tls off, auth user, keep no, timeout 5, mbox tmp/inbox.mbox)."""
    def write(srv, **keys):
        keys.setdefault("tls", "off")
        keys.setdefault("auth", "user")
        keys.setdefault("timeout", 5)
        keys.setdefault("deliver", f"mbox {tmp / 'inbox.mbox'}")
        keys.setdefault("state", tmp / "state.db")
        text = pt.account_config(srv, "alice", name=ACCOUNT, **keys)
        return pt.write_config(tmp / "config", text)
    return write


def prun(run, cfg, *extra, timeout=30):
    """popsift -f cfg run; returns (CompletedProcess, seconds)."""
    t0 = time.monotonic()
    r = run("-f", cfg, *extra, "run", timeout=timeout)
    return r, time.monotonic() - t0


def show(r):
    return f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def delivered(tmp):
    """Messages in tmp/inbox.mbox, popsift's Received: header removed."""
    return [pt.strip_header(m, "Received") for m in pt.mbox_messages(tmp / "inbox.mbox")]


def names_account(r):
    """stderr has an error line about the account (not only the summary)."""
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith(ACCOUNT + ": ")]
    return lines


def error_lines(r):
    """stderr lines that are not the per-account summary or -v traces."""
    return [ln for ln in r.stderr.splitlines()
            if ln.strip() and " new, " not in ln and not ln.startswith((f"{ACCOUNT}: C:",
                                                                        f"{ACCOUNT}: S:"))]


def assert_names_account(r):
    errs = error_lines(r)
    assert errs, "no error message on stderr\n" + show(r)
    assert all(ln.startswith(ACCOUNT + ": ") for ln in errs), \
        "error lines must start with the account name\n" + show(r)


def assert_not_crashed(r):
    assert r.returncode >= 0, "popsift was killed by a signal (crash or hang)\n" + show(r)


def assert_exactly_once_or_on_server(tmp, srv, msgs):
    """Never lose, never duplicate: every message is delivered at most once;
    one not delivered is still on the server."""
    got = delivered(tmp)
    for m in got:
        assert got.count(m) == 1, f"delivered twice: {m[:80]!r}"
        assert m in msgs, f"delivered something that was not sent: {m[:200]!r}"
    left = srv.remaining()
    for i, m in enumerate(msgs, 1):
        assert m in got or m in left, f"message {i} lost: neither delivered nor on the server"


def assert_all_delivered_once(tmp, srv, msgs, server_empty=True):
    got = delivered(tmp)
    assert sorted(got) == sorted(msgs), (
        f"mbox holds {len(got)} messages, expected each of the {len(msgs)} exactly once")
    if server_empty:
        assert srv.count() == 0, f"{srv.count()} messages left on the server"


def db_states(tmp):
    """{uidl: state} for the account from popsift's state database."""
    with sqlite3.connect(tmp / "state.db") as db:
        return dict(db.execute("SELECT uidl, state FROM messages WHERE account=?", (ACCOUNT,)))


def rerun_clean(run, cfg, tmp, srv, msgs):
    """A rerun against a well-behaved server ends the story: exit 0, every
    message delivered exactly once, the server empty."""
    srv.clear_faults()
    r, _ = prun(run, cfg)
    assert r.returncode == 0, "rerun against a healthy server failed\n" + show(r)
    assert_all_delivered_once(tmp, srv, msgs)
    return r


# --------------------------------------------------------------------------
# the baseline: a well-behaved fake server

def test_fake_server_baseline(run, fake, fconfig, tmp):
    msgs = make_messages(5)
    srv = fake(msgs)
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert_all_delivered_once(tmp, srv, msgs)
    assert srv.deleted == {1, 2, 3, 4, 5}
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert_all_delivered_once(tmp, srv, msgs)


# --------------------------------------------------------------------------
# no UIDL: messages are identified by a hash of their headers

def test_no_uidl_uses_header_hash(run, fake, fconfig, tmp):
    msgs = make_messages(4)
    srv = fake(msgs, uidl=False)
    cfg = fconfig(srv, keep="yes")
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert "hash" in r.stderr and any(
        ln.startswith(ACCOUNT + ": ") and "hash" in ln for ln in r.stderr.splitlines()), \
        "popsift must say it identifies messages by a header hash\n" + show(r)
    assert_all_delivered_once(tmp, srv, msgs, server_empty=False)
    assert srv.count() == 4 and not srv.deleted          # keep yes
    assert srv.commands("TOP"), "a header hash needs TOP n 0"

    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert_all_delivered_once(tmp, srv, msgs, server_empty=False)   # nothing again
    assert srv.count() == 4


def test_no_uidl_keep_no_then_new_mail(run, fake, fconfig, tmp):
    """Hash identities survive renumbering: after the first run deletes,
    new mail on the server is delivered once, the old never again."""
    msgs = make_messages(3)
    srv = fake(msgs, uidl=False)
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert srv.count() == 0
    more = make_messages(2, tag="later")
    for m in more:
        srv.add(m)
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert_all_delivered_once(tmp, srv, msgs + more)


def test_no_uidl_identical_headers_nothing_lost(run, fake, fconfig, tmp):
    """Two messages whose header sections are identical (no Message-ID, same
    Date) hash alike: whatever popsift does, none may be lost, none doubled."""
    head = b"From: cron@example.org\nSubject: backup report\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\n"
    msgs = [head + b"first body\n", head + b"second body\n"] + make_messages(1)
    srv = fake(msgs, uidl=False)
    cfg = fconfig(srv)
    for _ in range(3):
        r, _ = prun(run, cfg)
        assert_not_crashed(r)
        assert r.returncode in (0, 69, 75), show(r)
        assert_exactly_once_or_on_server(tmp, srv, msgs)


# --------------------------------------------------------------------------
# the connection drops in the middle of a RETR body

def test_drop_mid_retr(run, fake, fconfig, tmp):
    msgs = make_messages(5)
    srv = fake(msgs, drop="RETR", drop_msg=3, faulty_sessions={1})
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert r.returncode == 75, show(r)
    assert_names_account(r)
    assert "RETR" in r.stderr, "the error should name the failing step\n" + show(r)
    got = delivered(tmp)
    assert sorted(got) == sorted(msgs[:2]), \
        "messages received whole before the drop must be delivered, the cut one not\n" + show(r)
    assert not srv.deleted, "the session died before QUIT: nothing can have been deleted"
    assert_exactly_once_or_on_server(tmp, srv, msgs)

    rerun_clean(run, cfg, tmp, srv, msgs)


# --------------------------------------------------------------------------
# -ERR to QUIT: the server committed no deletes

def test_err_quit_means_nothing_deleted(run, fake, fconfig, tmp):
    msgs = make_messages(3)
    srv = fake(msgs, err={"QUIT"}, faulty_sessions={1})
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    # delivered fine, but the server refused to delete: not a clean success
    assert r.returncode in (0, 75), show(r)
    assert any(ln.startswith(ACCOUNT + ": ") and "QUIT" in ln for ln in r.stderr.splitlines()), \
        "the refused QUIT must be reported, naming the account\n" + show(r)
    assert srv.commands("DELE"), "popsift should have asked for the deletes"
    assert srv.count() == 3 and not srv.deleted
    assert_all_delivered_once(tmp, srv, msgs, server_empty=False)
    states = db_states(tmp)
    assert not any(s == "deleted" for s in states.values()), \
        f"popsift recorded deletes the server did not commit: {states}"
    assert " 0 deleted" in r.stderr or "deleted" not in r.stderr, \
        "the summary must not count deletes that did not happen\n" + show(r)

    # rerun: the server still has them; deliver nothing again, DELE them all
    srv.clear_faults()
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert not srv.commands("RETR")[3:], "already delivered messages were fetched again"
    assert_all_delivered_once(tmp, srv, msgs)
    assert srv.deleted == {1, 2, 3}
    assert set(db_states(tmp).values()) == {"deleted"}


# --------------------------------------------------------------------------
# a malformed status line

@pytest.mark.parametrize("verb", ["UIDL", "RETR"])
def test_malformed_status_line(run, fake, fconfig, tmp, verb):
    msgs = make_messages(3)
    # for RETR: message 1 arrives fine, the reply to RETR 2 is "HELLO"
    raw = {verb: b"HELLO\r\n"} if verb == "UIDL" else {verb: {2: b"HELLO\r\n"}}
    srv = fake(msgs, raw=raw, faulty_sessions={1})
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert r.returncode == 69, show(r)
    assert_names_account(r)
    assert verb in r.stderr and "HELLO" in r.stderr, \
        "the error should name the command and quote the reply\n" + show(r)
    assert not srv.deleted and not srv.commands("DELE"), "nothing may be deleted"
    assert_exactly_once_or_on_server(tmp, srv, msgs)
    if verb == "RETR":
        assert delivered(tmp) == msgs[:1], "message 1 arrived whole before the bad reply"

    rerun_clean(run, cfg, tmp, srv, msgs)


# --------------------------------------------------------------------------
# a multi-line reply that never ends

@pytest.mark.parametrize("verb", ["UIDL", "RETR"])
def test_unterminated_multiline_reply_times_out(run, fake, fconfig, tmp, verb):
    msgs = make_messages(3)
    srv = fake(msgs, unterminated=verb, faulty_sessions={1})
    cfg = fconfig(srv, timeout=2)
    r, secs = prun(run, cfg, timeout=30)
    assert_not_crashed(r)
    assert secs < 10, f"took {secs:.1f} s with timeout 2\n" + show(r)
    assert r.returncode == 75, show(r)
    assert_names_account(r)
    assert not srv.deleted
    assert_exactly_once_or_on_server(tmp, srv, msgs)

    rerun_clean(run, cfg, tmp, srv, msgs)


# --------------------------------------------------------------------------
# a 10 MB line

@pytest.mark.parametrize("where", ["status", "data"])
def test_10mb_line(run, fake, fconfig, tmp, where):
    msgs = make_messages(2)
    srv = fake(msgs, long_line="UIDL", long_line_where=where, faulty_sessions={1})
    cfg = fconfig(srv)
    r, secs = prun(run, cfg, timeout=60)
    assert_not_crashed(r)
    assert r.returncode == 69, show(r)
    assert_names_account(r)
    assert "UIDL" in r.stderr and "long" in r.stderr, \
        "a clear error naming the command and the line length\n" + show(r)
    assert len(r.stderr) < 10000, "the monster line must not be echoed"
    assert not srv.deleted and delivered(tmp) == []

    rerun_clean(run, cfg, tmp, srv, msgs)


# --------------------------------------------------------------------------
# NUL bytes in a message

def test_nul_bytes_delivered_intact(run, fake, fconfig, tmp):
    msgs = make_messages(2, body=b"binary\0junk\0\0 in the body\nand \0 at a line start:\n\0x\n")
    msgs.append(b"From: nul@example.org\nSubject: has\0nul in header\n"
                b"Message-ID: <nul@fakepop.test>\n\n\0\0\0\n")
    srv = fake(msgs)
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    got = delivered(tmp)
    assert sorted(got) == sorted(msgs), "NUL bytes must survive delivery byte for byte"
    assert srv.count() == 0


# --------------------------------------------------------------------------
# duplicate UIDLs

def test_duplicate_uidls_nothing_lost(run, fake, fconfig, tmp):
    msgs = make_messages(4)
    srv = fake(msgs, uidls=["a", "b", "a", "c"])
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert r.returncode in (0, 69), show(r)
    assert any(ln.startswith(ACCOUNT + ": ") and "twice" in ln
               for ln in r.stderr.splitlines()), \
        "the duplicate UIDL must be reported, naming the account\n" + show(r)
    assert_exactly_once_or_on_server(tmp, srv, msgs)

    # rerun: the leftover message now carries UIDL "a", which popsift has
    # delivered and deleted before; it must not be deleted undelivered
    r, _ = prun(run, cfg)
    assert_not_crashed(r)
    assert_exactly_once_or_on_server(tmp, srv, msgs)
    r, _ = prun(run, cfg)
    assert_not_crashed(r)
    assert_exactly_once_or_on_server(tmp, srv, msgs)


def test_duplicate_uidls_keep_yes(run, fake, fconfig, tmp):
    msgs = make_messages(3)
    srv = fake(msgs, uidls=["x", "x", "y"])
    cfg = fconfig(srv, keep="yes")
    for _ in range(2):
        r, _ = prun(run, cfg)
        assert r.returncode in (0, 69), show(r)
        assert any(ln.startswith(ACCOUNT + ": ") and "twice" in ln
                   for ln in r.stderr.splitlines()), show(r)
        assert srv.count() == 3 and not srv.deleted
        assert_exactly_once_or_on_server(tmp, srv, msgs)


# --------------------------------------------------------------------------
# issue 6: a UIDL line without a UID ("3 " or "3") costs that message its
# UID, not the run: it is known by a hash of its headers, as on a server
# without UIDL, and the rest is fetched as usual

def no_uid_lines(r, num):
    return [ln for ln in r.stderr.splitlines()
            if ln.startswith(ACCOUNT + ": ") and f"message {num} has no UIDL" in ln]


@pytest.mark.parametrize("line", ["3 ", "3", "3 \t "], ids=["space", "bare", "blanks"])
def test_uidl_line_without_uid_hashes_that_message(run, fake, fconfig, tmp, line):
    msgs = make_messages(4)
    srv = fake(msgs, uidl_lines={3: line}, faulty_sessions={1})
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert len(no_uid_lines(r, 3)) == 1 and "hash" in no_uid_lines(r, 3)[0], \
        "one line naming the account and the message\n" + show(r)
    assert srv.commands("TOP") == ["TOP 3 0"], "only that message needs TOP"
    assert_all_delivered_once(tmp, srv, msgs)
    assert srv.deleted == {1, 2, 3, 4}
    assert sum(1 for u in db_states(tmp) if u.startswith("hdr-")) == 1, db_states(tmp)

    rerun_clean(run, cfg, tmp, srv, msgs)


def test_uidl_line_without_uid_keep_yes_never_twice(run, fake, fconfig, tmp):
    msgs = make_messages(4)
    srv = fake(msgs, uidl_lines={2: "2 "})
    cfg = fconfig(srv, keep="yes")
    for i in range(3):
        r, _ = prun(run, cfg)
        assert r.returncode == 0, show(r)
        assert_all_delivered_once(tmp, srv, msgs, server_empty=False)
        assert srv.count() == 4 and not srv.deleted
    more = make_messages(1, tag="later")
    srv.add(more[0], "uid-5")
    srv.set(uidl_lines={2: "2 ", 5: "5"})
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert no_uid_lines(r, 5), show(r)
    assert_all_delivered_once(tmp, srv, msgs + more, server_empty=False)


def test_uidl_line_without_uid_and_no_top_stays(run, fake, fconfig, tmp):
    """No UID and no TOP: nothing can name the message, so it stays on the
    server, said each run; the others are fetched and deleted."""
    msgs = make_messages(3)
    srv = fake(msgs, uidl_lines={2: "2"}, top=False)
    cfg = fconfig(srv)
    for num in (2, 1):      # renumbered once 1 and 3 are gone
        srv.set(uidl_lines={num: str(num)})
        r, _ = prun(run, cfg)
        assert r.returncode == 0, show(r)
        assert [ln for ln in no_uid_lines(r, num) if "stays on the server" in ln], show(r)
        assert_exactly_once_or_on_server(tmp, srv, msgs)
        assert sorted(delivered(tmp)) == sorted([msgs[0], msgs[2]])
        assert srv.remaining() == [msgs[1]]


# --------------------------------------------------------------------------
# issue 6: a LIST size that lies.  max_size holds on the bytes RETR actually
# sends: past it the message is dropped, read on to its "." (the pipeline
# stays in sync), left on the server, recorded nowhere, said each run, and
# the run goes on (exit 0, as for a message LIST calls too big).  A LIST
# size that lies high costs nothing: it is not used to allocate.

def big_message(size, tag="big"):
    """A message of about `size` bytes (LF line ends), many short lines."""
    head = (b"From: big@example.org\nSubject: %s\nMessage-ID: <%s@fakepop.test>\n\n"
            % (tag.encode(), tag.encode()))
    line = b"y" * 75 + b"\n"
    return head + line * (size // len(line) + 1)


def too_big_lines(r, num, uid, said):
    return [ln for ln in r.stderr.splitlines()
            if ln.startswith(ACCOUNT + ": ") and f"message {num} " in ln and uid in ln
            and "sent more than max_size" in ln and f"LIST said {said}" in ln
            and "left on the server" in ln]


def test_list_lies_low_message_left_on_server(run, fake, fconfig, tmp):
    small = make_messages(3)
    big = big_message(3 << 20)
    msgs = [small[0], big, small[1], small[2]]
    srv = fake(msgs)
    cfg = fconfig(srv, max_size="1M")
    # first run: the big one is message 2; then, the others gone, message 1
    for num, run_no in ((2, 1), (1, 2), (1, 3)):
        srv.set(list_sizes={num: 1000})
        r, _ = prun(run, cfg)
        assert r.returncode == 0, show(r)
        assert len(too_big_lines(r, num, "uid-2", 1000)) == 1, show(r)
        assert_names_account(r)
        assert sorted(delivered(tmp)) == sorted(small), \
            "the others are delivered (the ones after it too: in sync), once\n" + show(r)
        assert srv.remaining() == [big], "the big one stays on the server, the rest go"
        assert f"DELE {num}" not in srv.session_logs[-1], "never DELE what was not delivered"
        assert "uid-2" not in db_states(tmp), "nothing recorded: a rerun does the same"
        assert f"RETR {num}" in srv.session_logs[-1], f"run {run_no} asks for it again"
    # a server that stops lying: LIST says it is too big, it is skipped as before
    srv.clear_faults()
    r, _ = prun(run, cfg)
    assert r.returncode == 0 and "larger than max_size" in r.stderr, show(r)
    assert "RETR 1" not in srv.session_logs[-1] and srv.remaining() == [big]


def test_list_lies_low_keep_yes_pipelined(run, fake, fconfig, tmp):
    """A batch of RETRs in flight around the liar: every message after it
    arrives whole and in order."""
    small = make_messages(6)
    big = big_message(3 << 20)
    msgs = small[:2] + [big] + small[2:]
    srv = fake(msgs, list_sizes={3: 4000})
    cfg = fconfig(srv, max_size="1M", keep="yes")
    for _ in range(2):
        r, _ = prun(run, cfg)
        assert r.returncode == 0, show(r)
        assert len(too_big_lines(r, 3, "uid-3", 4000)) == 1, show(r)
        assert delivered(tmp) == small, show(r)
        assert srv.count() == 7 and not srv.deleted
    assert db_states(tmp).get("uid-3") is None


def test_list_lies_low_stall_after_max_times_out(run, fake, fconfig, tmp):
    """Reading on past max_size is still bounded in time."""
    msgs = [make_messages(1)[0], big_message(3 << 20), make_messages(2, tag="n")[1]]
    srv = fake(msgs, list_sizes={2: 1000}, stall="RETR", stall_msg=2, faulty_sessions={1})
    cfg = fconfig(srv, max_size="1M", timeout=2)
    r, secs = prun(run, cfg, timeout=30)
    assert_not_crashed(r)
    assert secs < 10 and r.returncode == 75, show(r)
    assert_names_account(r)
    assert delivered(tmp) == msgs[:1] and not srv.deleted
    assert_exactly_once_or_on_server(tmp, srv, msgs)


def test_list_lies_low_disk_bounded(popsift, fake, fconfig, tmp):
    """max_size 3M (past the 2 MB spill threshold), a 20 MB message LIST
    calls 1000 bytes: with files limited to 4 MB (RLIMIT_FSIZE; SIGXFSZ
    ignored, so an outgrown spill file is a write error), the spill file
    must stop at max_size."""
    msgs = [make_messages(1)[0], big_message(20 << 20), make_messages(2, tag="n")[1]]
    srv = fake(msgs, list_sizes={2: 1000})
    cfg = fconfig(srv, max_size="3M")
    limit = 4 << 20
    wrapper = ("import os, resource, signal, sys\n"
               "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
               "os.execv(sys.argv[1], sys.argv[1:])\n")
    spill = tmp / "spill"
    spill.mkdir()
    r = pt.run_popsift(["-c", wrapper, popsift, "-f", cfg, "run"], binary=sys.executable,
                       env={"TMPDIR": spill}, timeout=120)
    assert r.returncode == 0, show(r)
    assert "too large" not in r.stderr.lower(), show(r)
    assert len(too_big_lines(r, 2, "uid-2", 1000)) == 1, show(r)
    assert sorted(delivered(tmp)) == sorted([msgs[0], msgs[2]])
    assert srv.remaining() == [msgs[1]]


@pytest.mark.parametrize("max_size", [None, "60M"], ids=["default", "60M"])
def test_list_lies_high_delivered_exactly(run, fake, fconfig, tmp, max_size):
    """LIST says 50 MB (or 0) for small mail: fetched and delivered byte for
    byte; a 3 MB message LIST calls 0 bytes spills and arrives whole."""
    msgs = make_messages(3) + [big_message(3 << 20, tag="spilled")]
    srv = fake(msgs, list_sizes={1: 50 << 20, 2: 0, 3: 50 << 20, 4: 0})
    cfg = fconfig(srv) if max_size is None else fconfig(srv, max_size=max_size)
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    assert "max_size" not in r.stderr, show(r)
    assert_all_delivered_once(tmp, srv, msgs)
    assert delivered(tmp) == msgs, "in order, byte for byte"


def test_list_lies_high_above_max_size_skipped(run, fake, fconfig, tmp):
    """A LIST size above max_size is believed: a small message skipped
    (from LIST, before any RETR) stays on the server, nothing lost."""
    msgs = make_messages(3)
    srv = fake(msgs, list_sizes={2: 5 << 20})
    cfg = fconfig(srv, max_size="1M")
    r, _ = prun(run, cfg)
    assert r.returncode == 0 and "larger than max_size" in r.stderr, show(r)
    assert "RETR 2" not in srv.log
    assert sorted(delivered(tmp)) == sorted([msgs[0], msgs[2]])
    assert srv.remaining() == [msgs[1]]


# --------------------------------------------------------------------------
# a server that stalls

@pytest.mark.parametrize("where", ["accept", "UIDL", "RETR-mid-body"])
def test_stall_forever_times_out(run, fake, fconfig, tmp, where):
    msgs = make_messages(3)
    if where == "RETR-mid-body":
        faults = dict(stall="RETR", stall_msg=2)
    else:
        faults = dict(stall=where)
    srv = fake(msgs, faulty_sessions={1}, **faults)
    cfg = fconfig(srv, timeout=2)
    r, secs = prun(run, cfg, timeout=30)
    assert_not_crashed(r)
    assert secs < 10, f"took {secs:.1f} s with timeout 2\n" + show(r)
    assert r.returncode == 75, show(r)
    assert_names_account(r)
    assert not srv.deleted
    assert_exactly_once_or_on_server(tmp, srv, msgs)
    if where == "RETR-mid-body":
        assert delivered(tmp) == msgs[:1], "message 1 arrived whole before the stall"

    rerun_clean(run, cfg, tmp, srv, msgs)


# --------------------------------------------------------------------------
# issue 6: the connection drops at other steps; -ERR to RETR and DELE

@pytest.mark.parametrize("step", ["greeting", "USER", "after_login", "UIDL", "DELE",
                                  "QUIT", "QUIT-after-commit"])
def test_drop_at_step(run, fake, fconfig, tmp, step):
    msgs = make_messages(4)
    faults = dict(drop=step, drop_msg=3 if step == "DELE" else None)
    if step == "QUIT-after-commit":      # the server deletes, the +OK never arrives
        faults = dict(drop="QUIT", quit_commits=True)
    srv = fake(msgs, faulty_sessions={1}, **faults)
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert_not_crashed(r)
    assert r.returncode == 75, show(r)
    assert_names_account(r)
    if step in ("greeting", "USER", "after_login", "UIDL"):
        assert delivered(tmp) == [] and not srv.deleted
    if step in ("DELE", "QUIT"):
        assert_all_delivered_once(tmp, srv, msgs, server_empty=False)
        assert not srv.deleted
        assert "deleted" not in set(db_states(tmp).values())
    assert_exactly_once_or_on_server(tmp, srv, msgs)
    rerun_clean(run, cfg, tmp, srv, msgs)


def test_err_retr_leaves_message(run, fake, fconfig, tmp):
    msgs = make_messages(4)
    srv = fake(msgs, err={"RETR": {2}}, faulty_sessions={1})
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert r.returncode == 75, show(r)
    assert_names_account(r)
    assert "RETR 2" in r.stderr, show(r)
    assert srv.deleted == {1, 3, 4}, "only the delivered messages may be deleted"
    assert_exactly_once_or_on_server(tmp, srv, msgs)
    rerun_clean(run, cfg, tmp, srv, msgs)


def test_err_dele_keeps_state_right(run, fake, fconfig, tmp):
    msgs = make_messages(4)
    srv = fake(msgs, err={"DELE": {2}}, faulty_sessions={1})
    cfg = fconfig(srv)
    r, _ = prun(run, cfg)
    assert r.returncode in (0, 75), show(r)
    assert_names_account(r)
    assert "DELE 2" in r.stderr, show(r)
    assert srv.deleted == {1, 3, 4}
    assert_all_delivered_once(tmp, srv, msgs, server_empty=False)
    assert db_states(tmp).get("uid-2") != "deleted"
    rerun_clean(run, cfg, tmp, srv, msgs)


# --------------------------------------------------------------------------
# FakePop self-tests: the knobs do what they say (raw socket, no popsift)

class Client:
    def __init__(self, srv):
        self.s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        self.f = self.s.makefile("rb")

    def line(self):
        try:
            return self.f.readline()
        except ConnectionResetError:     # a drop with our command unread
            return b""

    def send(self, *cmds):
        self.s.sendall(b"".join(c.encode() + b"\r\n" for c in cmds))

    def cmd(self, c):
        self.send(c)
        return self.line()

    def multi(self):
        out = []
        while True:
            ln = self.line()
            if ln in (b".\r\n", b""):
                return out, ln
            out.append(ln)

    def login(self):
        assert self.line().startswith(b"+OK")
        assert self.cmd("USER alice").startswith(b"+OK")
        assert self.cmd("PASS secret").startswith(b"+OK")
        return self

    def close(self):
        self.f.close()
        self.s.close()


def test_fakepop_pipelined_dotstuffed_crlf():
    msgs = [b"Subject: a\n\n.\n..x\nend", b"Subject: b\r\n\r\nbody\r\n"]
    with FakePop(msgs, ["u1", "u2"]) as srv:
        c = Client(srv).login()
        c.send("UIDL", "LIST", "RETR 1", "RETR 2", "DELE 1", "QUIT")   # pipelined
        assert c.line().startswith(b"+OK")
        assert c.multi()[0] == [b"1 u1\r\n", b"2 u2\r\n"]
        assert c.line().startswith(b"+OK")
        sizes = c.multi()[0]
        assert sizes == [b"1 27\r\n", b"2 20\r\n"]
        assert c.line().startswith(b"+OK")
        assert c.multi()[0] == [b"Subject: a\r\n", b"\r\n", b"..\r\n", b"...x\r\n", b"end\r\n"]
        assert c.line().startswith(b"+OK")
        assert c.multi()[0] == [b"Subject: b\r\n", b"\r\n", b"body\r\n"]
        assert c.line().startswith(b"+OK")      # DELE
        assert c.line().startswith(b"+OK")      # QUIT
        c.close()
        assert srv.deleted == {1}
        assert srv.log[-6:] == ["UIDL", "LIST", "RETR 1", "RETR 2", "DELE 1", "QUIT"]
        # the next session sees one message, renumbered
        c = Client(srv).login()
        c.send("UIDL")
        c.line()
        assert c.multi()[0] == [b"1 u2\r\n"]
        c.close()
        assert srv.connections == 2


def test_fakepop_greeting_capa_knobs():
    import hashlib
    with FakePop([b"S: x\n\nb\n"], apop=True, greeting="hi there", pipelining=False,
                 top=False) as srv:
        c = Client(srv)
        g = c.line()
        assert g.startswith(b"+OK hi there <") and g.rstrip().endswith(b"@fakepop>")
        stamp = g.split()[-1].decode()
        assert c.cmd("CAPA").startswith(b"+OK")
        caps = [x.strip() for x in c.multi()[0]]
        assert b"UIDL" in caps and b"USER" in caps
        assert b"PIPELINING" not in caps and b"TOP" not in caps
        digest = hashlib.md5((stamp + "secret").encode()).hexdigest()
        assert c.cmd(f"APOP alice {digest}").startswith(b"+OK")
        assert c.cmd("TOP 1 0").startswith(b"-ERR")
        c.close()
    with FakePop([], capa=False, uidl=False) as srv:
        c = Client(srv)
        assert c.line() == b"+OK fakepop ready\r\n"      # no APOP timestamp
        assert c.cmd("CAPA").startswith(b"-ERR")
        assert c.cmd("APOP alice 0123").startswith(b"-ERR")
        assert c.cmd("USER alice").startswith(b"+OK")
        assert c.cmd("PASS wrong").startswith(b"-ERR")
        assert c.cmd("USER alice").startswith(b"+OK")
        assert c.cmd("PASS secret").startswith(b"+OK")
        assert c.cmd("UIDL").startswith(b"-ERR")
        c.close()


@pytest.mark.parametrize("step", ["greeting", "USER", "PASS", "after_login", "UIDL",
                                  "RETR", "DELE", "QUIT"])
def test_fakepop_drop(step):
    with FakePop([b"S: 1\n\n" + b"x" * 1000 + b"\n", b"S: 2\n\nbody\n"], ["a", "b"],
                 drop=step, drop_msg=2 if step in ("RETR", "DELE") else None) as srv:
        c = Client(srv)
        script = ["USER alice", "PASS secret", "NOOP", "UIDL", "RETR 1", "RETR 2",
                  "DELE 1", "DELE 2", "QUIT"]
        got = [c.line()]
        for cmd in script:
            try:
                c.send(cmd)
            except OSError:
                break
            ln = c.line()
            got.append(ln)
            if ln == b"":
                break
            if cmd in ("UIDL", "RETR 1", "RETR 2") and ln.startswith(b"+OK"):
                lines, end = c.multi()
                if end == b"":
                    got.append(b"<cut>")
                    break
        c.close()
        assert got[-1] in (b"", b"<cut>"), (step, got)
        assert not srv.deleted, "a dropped session commits nothing"
        if step == "RETR":
            assert got[-1] == b"<cut>" and srv.log[-1] == "RETR 2"
        assert srv.remaining() == srv.messages


def test_fakepop_quit_commits_then_drops():
    with FakePop([b"S: 1\n\nx\n"], drop="QUIT", quit_commits=True) as srv:
        c = Client(srv).login()
        assert c.cmd("DELE 1").startswith(b"+OK")
        assert c.cmd("QUIT") == b""
        c.close()
        time.sleep(0.1)
        assert srv.deleted == {1}


def test_fakepop_err_and_faulty_sessions():
    with FakePop([b"S: 1\n\nx\n", b"S: 2\n\ny\n"], err={"RETR": {2}, "QUIT": True, "DELE": True},
                 faulty_sessions={1}) as srv:
        c = Client(srv).login()
        assert c.cmd("RETR 1").startswith(b"+OK")
        c.multi()
        assert c.cmd("RETR 2").startswith(b"-ERR")
        assert c.cmd("DELE 1").startswith(b"-ERR")
        assert c.cmd("QUIT").startswith(b"-ERR")
        c.close()
        c = Client(srv).login()                      # session 2: healthy
        assert c.cmd("RETR 2").startswith(b"+OK")
        c.multi()
        assert c.cmd("DELE 2").startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")
        c.close()
        time.sleep(0.05)
        assert srv.deleted == {2}
        srv.set(err={"QUIT"}, faulty_sessions=None)  # changed between sessions
        c = Client(srv).login()
        assert c.cmd("DELE 1").startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"-ERR")
        c.close()
        time.sleep(0.05)
        assert srv.deleted == {2}


def test_fakepop_malformed_unterminated_longline_stall():
    m = [b"S: 1\n\nx\n", b"S: 2\n\ny\n"]
    with FakePop(m, malformed="STAT") as srv:
        c = Client(srv).login()
        assert c.cmd("STAT") == b"HELLO\r\n"
        c.close()
    with FakePop(m, raw={"RETR": {2: b"HELLO\r\n"}}) as srv:
        c = Client(srv).login()
        assert c.cmd("RETR 1").startswith(b"+OK")
        c.multi()
        assert c.cmd("RETR 2") == b"HELLO\r\n"
        c.close()
    with FakePop(m, unterminated="LIST") as srv:
        c = Client(srv).login()
        assert c.cmd("LIST").startswith(b"+OK")
        assert c.line() == b"1 11\r\n" and c.line() == b"2 11\r\n"
        c.s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.line()
        c.close()
    with FakePop(m, long_line="UIDL", long_line_size=1 << 20) as srv:
        c = Client(srv).login()
        ln = c.cmd("UIDL")
        assert ln.startswith(b"+OK xxx") and len(ln) == 4 + (1 << 20) + 2
        c.close()
    with FakePop(m, stall="accept") as srv:
        c = Client(srv)
        c.s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.line()
        c.close()
    with FakePop(m, stall="RETR", stall_msg=2) as srv:
        c = Client(srv).login()
        assert c.cmd("RETR 1").startswith(b"+OK")
        c.multi()
        assert c.cmd("RETR 2").startswith(b"+OK")
        c.s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.multi()
        c.close()


def test_fakepop_uidl_and_list_lies():
    m = [b"S: 1\n\nx\n", b"S: 2\n\ny\n", b"S: 3\n\nz\n"]
    with FakePop(m, ["dup", "dup", ""], list_sizes={2: 99999}) as srv:
        c = Client(srv).login()
        c.send("UIDL")
        c.line()
        assert c.multi()[0] == [b"1 dup\r\n", b"2 dup\r\n", b"3 \r\n"]
        c.send("LIST")
        c.line()
        assert c.multi()[0] == [b"1 11\r\n", b"2 99999\r\n", b"3 11\r\n"]
        assert c.cmd("LIST 2") == b"+OK 2 99999\r\n"
        assert c.cmd("STAT") == b"+OK 3 100021\r\n"
        c.close()
        srv.uidls = ["p", "q", "r"]              # a UIDL list that changes
        c = Client(srv).login()
        c.send("UIDL")
        c.line()
        assert c.multi()[0] == [b"1 p\r\n", b"2 q\r\n", b"3 r\r\n"]
        c.close()


def test_fakepop_uidl_lines():
    m = [b"S: 1\n\nx\n", b"S: 2\n\ny\n", b"S: 3\n\nz\n"]
    with FakePop(m, ["a", "b", "c"], uidl_lines={2: "2", 3: "3 "}) as srv:
        c = Client(srv).login()
        c.send("UIDL")
        c.line()
        assert c.multi()[0] == [b"1 a\r\n", b"2\r\n", b"3 \r\n"]
        assert c.cmd("UIDL 2") == b"+OK 2\r\n"
        assert c.cmd("UIDL 1") == b"+OK 1 a\r\n"
        c.close()


def test_fakepop_top_and_nul():
    m = [b"Subject: t\n\nl1\nl2\n\0l3\n"]
    with FakePop(m) as srv:
        c = Client(srv).login()
        assert c.cmd("TOP 1 0").startswith(b"+OK")
        assert c.multi()[0] == [b"Subject: t\r\n", b"\r\n"]
        assert c.cmd("TOP 1 1").startswith(b"+OK")
        assert c.multi()[0] == [b"Subject: t\r\n", b"\r\n", b"l1\r\n"]
        assert c.cmd("RETR 1").startswith(b"+OK")
        assert c.multi()[0][-1] == b"\0l3\r\n"
        c.close()


# ---------------------------------------------------------------------------
# a login method the server does not offer is not a wrong password

def test_apop_without_timestamp_is_not_a_refused_login(fake, fconfig, run):
    srv = fake(make_messages(2), apop=False)
    r, _ = prun(run, fconfig(srv, auth="apop"))
    assert r.returncode == 69, show(r)
    assert r.stderr.startswith("fake: ") and "no APOP timestamp" in r.stderr, show(r)
    assert not srv.commands("APOP") and not srv.commands("PASS"), "no credentials sent"
    assert srv.count() == 2


def test_sasl_method_not_offered_says_so(fake, fconfig, run):
    srv = fake(make_messages(1))
    r, _ = prun(run, fconfig(srv, auth="cram-md5"))
    assert r.returncode == 69, show(r)
    assert "does not offer it" in r.stderr and r.stderr.startswith("fake: "), show(r)
    assert not srv.commands("AUTH") and not srv.commands("PASS")
    assert srv.count() == 1
