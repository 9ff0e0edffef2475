"""A hostile POP3 server must not stall, starve or slow popsift (issue 13).

popsift against tests/lib/fakepop.py scripted to trickle replies, shift its
pipelined replies, and send listings that are huge, out of order or
endless.  As in test_faults.py, every test checks the exit code, that
nothing was deleted that was not delivered byte for byte, and that a rerun
against a sane server delivers everything exactly once.
"""

import os
import signal
import time

import pytest

from test_faults import (assert_exactly_once_or_on_server, assert_names_account,  # noqa: F401
                         assert_not_crashed, delivered, fconfig, make_messages, prun,
                         rerun_clean, show)  # (fconfig: fixture)


def assert_deleted_only_delivered(tmp, srv, msgs):
    """Every message the server was told to DELE (in any session) is in the
    mbox byte for byte: a DELE never names a message popsift did not deliver."""
    got = delivered(tmp)
    for session, orig in srv.dele_log:
        assert msgs[orig - 1] in got, (
            f"session {session} sent DELE for message {orig}, which is not in the mbox as "
            f"it was sent\n{got!r}")


# --------------------------------------------------------------------------
# item 1: `timeout` bounds a whole reply; session_timeout a whole session

@pytest.mark.parametrize("verb", ["RETR", "UIDL"])
def test_trickling_reply_ends_at_timeout(run, fake, fconfig, tmp, verb):
    """One byte every half second: each read is quick, the reply never ends.
    With timeout 3 the run must end in about 3 s (the issue saw 32 s)."""
    msgs = make_messages(3)
    srv = fake(msgs, trickle=verb, trickle_msg=2 if verb == "RETR" else None,
               faulty_sessions={1})
    cfg = fconfig(srv, timeout=3)
    r, secs = prun(run, cfg, timeout=120)
    assert_not_crashed(r)
    print(f"trickling {verb}: {secs:.2f} s with timeout 3")
    assert secs < 10, f"took {secs:.1f} s with timeout 3\n" + show(r)
    assert r.returncode == 75, show(r)
    assert_names_account(r)
    assert "within 3 s" in r.stderr, show(r)
    assert not srv.deleted
    assert_exactly_once_or_on_server(tmp, srv, msgs)
    rerun_clean(run, cfg, tmp, srv, msgs)


def test_slow_big_message_is_not_cut(run, fake, fconfig, tmp):
    """The deadline grows with what arrives: a 12 KB message that takes
    longer than `timeout` at a steady few KB per second still arrives."""
    body = b"".join(b"line %05d of a long message, sent slowly\n" % i for i in range(300))
    msgs = make_messages(1, body=body)
    srv = fake(msgs, trickle="RETR", trickle_delay=0.00002)
    cfg = fconfig(srv, timeout=1)
    r, secs = prun(run, cfg, timeout=120)
    print(f"slow message: {secs:.2f} s")
    assert r.returncode == 0, show(r)
    assert secs > 1.5, "the message did not take longer than timeout: nothing tested"
    rerun_clean(run, cfg, tmp, srv, msgs)


def test_session_timeout_caps_a_session(run, fake, fconfig, tmp):
    """Every reply comes in time, but slowly: session_timeout ends the run."""
    msgs = make_messages(12)
    srv = fake(msgs, trickle="RETR", trickle_delay=0.01, faulty_sessions={1})
    cfg = fconfig(srv, timeout=20, session_timeout=4)
    r, secs = prun(run, cfg, timeout=120)
    assert_not_crashed(r)
    assert secs < 15, f"took {secs:.1f} s with session_timeout 4\n" + show(r)
    assert r.returncode == 75, show(r)
    assert_names_account(r)
    assert "session_timeout (4 s)" in r.stderr, show(r)
    assert not srv.deleted, "no QUIT after the session was cut"
    assert_exactly_once_or_on_server(tmp, srv, msgs)
    assert len(delivered(tmp)) < len(msgs)
    rerun_clean(run, cfg, tmp, srv, msgs)


def test_session_timeout_is_checked(run, fake, fconfig, tmp):
    srv = fake(make_messages(1))
    cfg = fconfig(srv, timeout=3, session_timeout="soon")
    r = run("-f", cfg, "check")
    assert r.returncode == 78, show(r)
    assert "session_timeout" in r.stderr, show(r)


# --------------------------------------------------------------------------
# item 6: a server whose pipelined replies shift by a line never makes
# popsift DELE a message it did not deliver

# popsift commits 500 messages a batch; the next batch's RETRs go out
# before that commit and its DELEs follow them, so with 505 messages a
# shift can hit a RETR in either batch, the last of the first, or a DELE
# in the middle of RETRs.
NMSGS = 505
SHIFTS = {
    "extra-after-RETR2": dict(extra_line={"RETR": {2: b"+OK\r\n"}}),
    "extra-after-RETR500": dict(extra_line={"RETR": {500: b"+OK 12 octets\r\n"}}),
    "extra-after-RETR503": dict(extra_line={"RETR": {503: b"+OK\r\n"}}),
    "extra-after-DELE1": dict(extra_line={"DELE": {1: b"+OK\r\n"}}),
    "extra-after-DELE500": dict(extra_line={"DELE": {500: b"+OK\r\n"}}),
    "err-line-after-RETR3": dict(extra_line={"RETR": {3: b"-ERR out of step\r\n"}}),
    "no-dot-RETR2": dict(no_terminator={"RETR": {2}}),
    "no-dot-RETR500": dict(no_terminator={"RETR": {500}}),
    "no-dot-RETR505": dict(no_terminator={"RETR": {505}}),
    "no-reply-DELE1": dict(skip_reply={"DELE": {1}}),
    "no-reply-DELE500": dict(skip_reply={"DELE": {500}}),
}


@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_shifted_replies_never_dele_undelivered(run, fake, fconfig, tmp, shift):
    msgs = make_messages(NMSGS)
    srv = fake(msgs, faulty_sessions={1}, **SHIFTS[shift])
    cfg = fconfig(srv, timeout=3)
    r, secs = prun(run, cfg, timeout=60)
    assert_not_crashed(r)
    assert r.returncode in (69, 75), show(r)
    assert_names_account(r)
    assert_deleted_only_delivered(tmp, srv, msgs)
    assert_exactly_once_or_on_server(tmp, srv, msgs)

    rerun_clean(run, cfg, tmp, srv, msgs)
    assert_deleted_only_delivered(tmp, srv, msgs)


def test_status_line_in_a_body_is_mail(run, fake, fconfig, tmp):
    """A body line "+OK ..." in a message whose size LIST told right is
    mail, not a shift."""
    msgs = make_messages(3, body=b"+OK this line looks like a POP3 reply\n-ERR so does this\n")
    srv = fake(msgs)
    cfg = fconfig(srv, timeout=3)
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    rerun_clean(run, cfg, tmp, srv, msgs)


# --------------------------------------------------------------------------
# item 2: the daemon ends polls that outlive their cap, and stops in
# bounded time even while a server stalls

from test_daemon import acct, daemon, make_config  # noqa: E402,F401  (daemon: fixture)


def children_of(pid):
    """Pids whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(d))
    return out


def kill_groups(pids):
    for p in pids:
        for target in (-p, p):
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def stuck_account(srv, tmp, **keys):
    """An account whose poll hangs in its password_command."""
    return acct(None, "alice", "stuck", host="127.0.0.1", port=srv.port, tls="off",
                auth="user", password_command="sleep 600", interval=1,
                deliver=f"mbox {tmp / 'stuck.mbox'}", **keys)


def test_daemon_sigterm_while_server_stalls(daemon, fake, tmp):
    """A server that accepts and never greets, timeout 300: SIGTERM must
    still end the daemon within seconds (the poll is told, then killed)."""
    srv = fake(make_messages(1), stall="accept")
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      acct(None, "alice", "stall", host="127.0.0.1", port=srv.port, tls="off",
                           auth="user", password="secret", timeout=300, interval=1,
                           deliver=f"mbox {tmp / 'stall.mbox'}"))
    d = daemon(cfg)
    d.wait_until(lambda: srv.connections >= 1, 10, what="the stalling server connected")
    kids = children_of(d.pid)
    try:
        rc, took = d.stop(timeout=15)
    finally:
        kill_groups(kids)
    assert rc == 0, d.text()
    assert took < 15, f"SIGTERM during a stalled poll took {took:.1f} s\n{d.text()}"


def test_daemon_ends_poll_past_session_timeout(daemon, fake, tmp):
    """A poll that outlives session_timeout (+ timeout + 10 s) gets TERM,
    then KILL, is logged as such, and its account backs off."""
    srv = fake(make_messages(1))
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"},
                      stuck_account(srv, tmp, session_timeout=1, timeout=1))
    d = daemon(cfg)
    kids = []
    try:
        d.wait_until(lambda: kids.extend(children_of(d.pid)) or kids, 10, what="a poll")
        _, m = d.wait_for(r"^stuck: ended after session_timeout \(1 s\): killed by signal 9 "
                          r"\(KILL\): next try in (\d+) s$", timeout=40)
        assert int(m.group(1)) >= 2, "the account backs off (interval 1 s, doubled)"
        assert d.count(r"^stuck: the poll has run \d+ s, past session_timeout") == 1, d.text()
        t0 = time.monotonic()
        d.wait_until(lambda: not os.path.exists(f"/proc/{kids[0]}"), 5, what="the poll gone")
        assert time.monotonic() - t0 < 5
        rc, took = d.stop(timeout=15)
        assert rc == 0 and took < 15, d.text()
    finally:
        kill_groups(kids)


def test_daemon_names_the_signal_that_killed_a_poll(daemon, fake, tmp):
    """A poll child killed from outside is "killed by signal 9 (KILL)", not
    "failed (exit 70)"."""
    srv = fake(make_messages(1))
    cfg = make_config(tmp / "config", {"state": tmp / "state.db"}, stuck_account(srv, tmp))
    d = daemon(cfg)
    kids = []
    try:
        d.wait_until(lambda: kids.extend(children_of(d.pid)) or kids, 10, what="a poll")
        os.kill(kids[0], signal.SIGKILL)
        d.wait_for(r"^stuck: killed by signal 9 \(KILL\): next try in \d+ s$", timeout=10)
        assert d.count(r"exit 70") == 0, d.text()
    finally:
        kill_groups(kids)
    d.stop(timeout=15)


# --------------------------------------------------------------------------
# items 3 and 4: listings cost linear time and bounded memory

def listing(lines) -> bytes:
    return b"+OK\r\n" + b"".join(lines) + b".\r\n"


def test_list_naming_numbers_uidl_did_not_is_linear(run, fake, fconfig, tmp):
    """UIDL names messages 2..200,001, LIST 1..200,001: every LIST line was
    a linear search (the issue saw 17 s for 100,000 lines); now one pass."""
    msgs = make_messages(1)
    crlf = msgs[0].replace(b"\n", b"\r\n")
    n = 200_000
    uidl = listing(b"%d u%d\r\n" % (k, k) for k in range(2, n + 2))
    big = listing(b"%d %d\r\n" % (k, len(crlf)) for k in range(1, n + 2))
    # {None: ...}: the bare LIST; message 2 is the one fetched (max_messages 1)
    srv = fake(msgs, raw={"UIDL": {None: uidl}, "LIST": {None: big, 2: b"+OK 2 %d\r\n" % len(crlf)},
                          "RETR": {2: b"+OK\r\n" + crlf.replace(b"\r\n.", b"\r\n..") + b".\r\n"}})
    cfg = fconfig(srv, timeout=30, keep="yes", max_messages=1)
    r, secs = prun(run, cfg, timeout=120)
    print(f"LIST of {n} numbers UIDL did not name: {secs:.2f} s")
    assert r.returncode == 0, show(r)
    assert secs < 5, f"a {n}-line LIST took {secs:.1f} s"
    assert delivered(tmp) == msgs


@pytest.mark.parametrize("verb", ["UIDL", "LIST"])
def test_listing_numbers_must_increase(run, fake, fconfig, tmp, verb):
    """A server repeating `1 x` forever grew the list until memory ran out:
    a number that does not increase is a protocol error (69), mailbox alone."""
    msgs = make_messages(3)
    if verb == "UIDL":
        faults = dict(raw={"UIDL": listing(b"1 x\r\n" for _ in range(200_000))})
    else:   # no UIDL: the LIST numbers name the messages
        faults = dict(uidl=False,
                      raw={"LIST": {None: listing([b"1 10\r\n", b"3 10\r\n", b"2 10\r\n"])}})
    srv = fake(msgs, faulty_sessions={1}, **faults)
    cfg = fconfig(srv, timeout=30)
    r, _ = prun(run, cfg, timeout=120)
    assert_not_crashed(r)
    assert r.returncode == 69, show(r)
    assert_names_account(r)
    assert "numbers must increase" in r.stderr and verb in r.stderr, show(r)
    assert len(r.stderr) < 5000, "one error, not a line per repeat"
    assert not srv.deleted and delivered(tmp) == []
    assert not srv.commands("RETR") and not srv.commands("DELE")
    rerun_clean(run, cfg, tmp, srv, msgs)


def test_listing_past_the_limit_is_refused(run, fake, fconfig, tmp):
    """1,000,001 UIDL lines: refused with exit 69, naming the account and
    the limit, before any RETR or DELE."""
    msgs = make_messages(2)
    lines = (b"%d u%08d\r\n" % (k, k) for k in range(1, 1_000_002))
    srv = fake(msgs, faulty_sessions={1}, raw={"UIDL": listing(lines)})
    cfg = fconfig(srv, timeout=60)
    r, secs = prun(run, cfg, timeout=180)
    assert_not_crashed(r)
    assert r.returncode == 69, show(r)
    assert_names_account(r)
    assert "more than 1000000 messages" in r.stderr and "left alone" in r.stderr, show(r)
    assert not srv.commands("RETR") and not srv.commands("DELE")
    rerun_clean(run, cfg, tmp, srv, msgs)


@pytest.mark.parametrize("extra", [b"-ERR out of step\r\n", b"+OK\r\n"])
def test_shifted_top_replies_never_discard_the_wrong_message(run, fake, fconfig, tmp, extra):
    """Header-only rules decide from TOP n 0: a shifted TOP reply must not
    make a discard rule delete another message than the one it matched."""
    msgs = make_messages(6)
    rules = tmp / "rules"
    rules.write_text('match header "Subject" =~ /^m message 4$/ discard\n')
    srv = fake(msgs, faulty_sessions={1}, extra_line={"TOP": {2: extra}})
    cfg = fconfig(srv, timeout=3, rules=rules)
    r, _ = prun(run, cfg, timeout=60)
    assert_not_crashed(r)
    assert r.returncode in (69, 75), show(r)
    assert_names_account(r)
    assert not srv.deleted, "nothing is deleted in a session whose replies slipped"
    srv.clear_faults()
    r, _ = prun(run, cfg)
    assert r.returncode == 0, show(r)
    kept = msgs[:3] + msgs[4:]
    assert sorted(delivered(tmp)) == sorted(kept)
    assert srv.deleted == {1, 2, 3, 4, 5, 6}
    for _, orig in srv.dele_log:
        assert orig == 4 or msgs[orig - 1] in delivered(tmp), f"message {orig} deleted unread"
