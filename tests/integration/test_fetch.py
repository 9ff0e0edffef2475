"""Integration tests for issue 2 (core fetch) against a real Dovecot:
mbox / Maildir / MDA delivery, mboxrd quoting, dot-stuffing, the Received:
header, keep yes/no, `run --all`, `run ACCOUNT`, the SQLite state, --json,
a large message with flat memory.

TLS / auth / -v masking:        test_fetch_tls.py
errors, timeouts, config:       test_fetch_errors.py
exactly once under SIGKILL:     test_fetch_crash.py

Run:  POPSIFT=/tmp/popsift /usr/bin/python3 -m pytest -q tests/integration/test_fetch*.py
"""

import json
import mailbox
import os
import poplib
import re
import sqlite3
import stat
import subprocess
import time
import uuid

import popsift_test as pt

gen = pt.load_genmail()

SUMMARY_RE = re.compile(
    r"^(?P<name>\S+): (?P<new>\d+) new, (?P<delivered>\d+) delivered, (?P<kept>\d+) kept, "
    r"(?P<deleted>\d+) deleted, (?P<mb>\d+\.\d) MB in (?P<secs>\d+\.\d) s$")

ASCTIME_RE = r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d \d{4}"


# --------------------------------------------------------------------------
# helpers

def mkmsg(tag: str, body: bytes = b"Hello.\n", sender: str = "sender@example.com",
          headers: bytes = b"", subject: str | None = None) -> bytes:
    """A small message with a unique Message-ID (LF line ends)."""
    mid = f"<{tag}.{uuid.uuid4().hex}@popsift.test>"
    h = (f"Return-Path: <{sender}>\n"
         f"From: Sender <{sender}>\n"
         f"To: alice@example.org\n"
         f"Subject: {subject or tag}\n"
         f"Date: Fri, 01 Mar 2024 09:00:00 +0000\n"
         f"Message-ID: {mid}\n").encode()
    return h + headers + b"\n" + body


def message_id(m: bytes) -> str:
    v = pt.header_values(m, "Message-ID")
    return v[0] if v else ""


def unreceived(msgs):
    """Delivered messages minus the Received: header popsift put on top."""
    out = []
    for m in msgs:
        assert m.startswith(b"Received:"), f"no Received: header on top of {m[:200]!r}"
        out.append(pt.strip_header(m, "Received", 1))
    return out


def summaries(stderr: str) -> dict:
    out = {}
    for line in stderr.splitlines():
        m = SUMMARY_RE.match(line)
        if m:
            out[m["name"]] = {k: int(m[k]) for k in ("new", "delivered", "kept", "deleted")}
    return out


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
    return r


def uidls(dc, user="alice"):
    """UIDLs of the messages on the server, in order (plain USER/PASS)."""
    p = poplib.POP3(dc.host, dc.port, timeout=10)
    try:
        p.user(user)
        p.pass_(dc.users[user])
        _, lines, _ = p.uidl()
        return [ln.split()[1].decode() for ln in lines]
    finally:
        p.quit()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --------------------------------------------------------------------------
# mbox

def test_mbox_delivery_exact_in_order_and_rerun_fetches_nothing(dovecot, config, run, tmp):
    msgs = gen.generate(16, seed=201)           # two of every kind
    dovecot.add_messages("alice", msgs)
    cfg = config()
    r = ok(run("-f", cfg, "run"))
    got = pt.mbox_messages(tmp / "inbox.mbox")
    assert len(got) == 16
    assert unreceived(got) == msgs               # exact bytes, same order
    assert dovecot.count("alice") == 0           # keep no: server emptied
    s = summaries(r.stderr)
    assert s == {"test": {"new": 16, "delivered": 16, "kept": 0, "deleted": 16}}, r.stderr

    before = (tmp / "inbox.mbox").read_bytes()
    r2 = ok(run("-f", cfg, "-v", "run"))
    assert (tmp / "inbox.mbox").read_bytes() == before
    assert "C: RETR" not in r2.stderr
    assert summaries(r2.stderr)["test"] == {"new": 0, "delivered": 0, "kept": 0, "deleted": 0}


def test_summary_line_format(dovecot, config, run):
    dovecot.add_messages("alice", [mkmsg(f"sum{i}") for i in range(3)])
    r = ok(run("-f", config(), "run"))
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("test: ")]
    assert any(SUMMARY_RE.match(ln) for ln in lines), r.stderr
    line = next(ln for ln in lines if SUMMARY_RE.match(ln))
    assert re.fullmatch(r"test: 3 new, 3 delivered, 0 kept, 3 deleted, 0\.0 MB in \d+\.\d s", line)


def test_quiet_prints_nothing_on_success(dovecot, config, run):
    dovecot.add_message("alice", mkmsg("quiet"))
    r = ok(run("-f", config(), "-q", "run"))
    assert r.stderr == "" and r.stdout == ""
    assert dovecot.count("alice") == 0


def test_mboxrd_from_quoting_and_dot_stuffing(dovecot, config, run, tmp):
    body = (b"From x is a line that must be quoted\n"
            b">From y was quoted once already\n"
            b">>From z twice\n"
            b"From\n"
            b"Froms are fine\n"
            b" From indented\n"
            b".\n"
            b"..\n"
            b"...\n"
            b".x leading dot\n"
            b". \n"
            b".From dotted from\n"
            b"\n"
            b"From after a blank line\n"
            b"last line\n")
    m1 = mkmsg("rd1", body)
    m2 = mkmsg("rd2", b"second\n")
    dovecot.add_messages("alice", [m1, m2])
    ok(run("-f", config(), "run"))
    raw = (tmp / "inbox.mbox").read_bytes()
    # on disk: mboxrd quoting, one more '>' for every ^>*From_ line
    assert b"\n>From x is a line" in raw
    assert b"\n>>From y was quoted" in raw
    assert b"\n>>>From z twice" in raw
    assert b"\n>From after a blank line" in raw
    assert b"\nFrom\n" in raw and b"\nFroms are fine\n" in raw   # not From_ lines
    # only the two separators start with "From "
    assert len(re.findall(rb"(?m)^From ", raw)) == 2
    got = unreceived(pt.mbox_messages(tmp / "inbox.mbox"))
    assert got == [m1, m2]


def test_crlf_on_wire_becomes_lf_on_disk(dovecot, config, run, tmp):
    lf = mkmsg("crlf-src", b"line one\nline two\n.\n..dots\nend\n")
    stored_crlf = lf.replace(b"\n", b"\r\n")     # stored with CRLF on the server
    m_lf = mkmsg("lf", b"plain LF message\n")
    dovecot.add_messages("alice", [stored_crlf, m_lf])
    ok(run("-f", config(), "run"))
    raw = (tmp / "inbox.mbox").read_bytes()
    assert b"\r" not in raw
    assert unreceived(pt.mbox_messages(tmp / "inbox.mbox")) == [lf, m_lf]


def test_from_line_uses_return_path(dovecot, config, run, tmp):
    m1 = mkmsg("rp1", sender="bounce-123@lists.example.net")
    m2 = mkmsg("rp2", sender="carol@example.com")
    dovecot.add_messages("alice", [m1, m2])
    ok(run("-f", config(), "run"))
    froms = pt.mbox_from_lines(tmp / "inbox.mbox")
    assert len(froms) == 2
    # after the date, the token of the batch that wrote it (crash recovery)
    token = r" popsift=[0-9a-f]{16}"
    assert re.fullmatch(r"From bounce-123@lists\.example\.net " + ASCTIME_RE + token,
                        froms[0]), froms[0]
    assert re.fullmatch(r"From carol@example\.com " + ASCTIME_RE + token, froms[1]), froms[1]


def test_message_without_trailing_newline(dovecot, config, run, tmp):
    m1 = mkmsg("nonl-before")
    m2 = mkmsg("nonl", b"first line\nno newline at the end")
    m3 = mkmsg("nonl-after", b"From the next message\n")
    dovecot.add_messages("alice", [m1, m2, m3])
    ok(run("-f", config(), "run"))
    got = unreceived(pt.mbox_messages(tmp / "inbox.mbox"))
    assert len(got) == 3, got
    assert got[0] == m1
    # POP3 cannot carry a missing final newline: one LF is added, nothing else
    assert got[1] in (m2, m2 + b"\n"), got[1][-60:]
    assert got[2] == m3
    # Python's mailbox module agrees
    box = mailbox.mbox(str(tmp / "inbox.mbox"), create=False)
    assert [message_id(bytes(box.get_bytes(k))) for k in box.keys()] == \
        [message_id(m) for m in (m1, m2, m3)]


def test_8bit_body_bytes_preserved(dovecot, config, run, tmp):
    high = bytes(range(0x80, 0x100))
    body = (b"Latin-1: \xe4\xf6\xfc\xdf\n"
            b"UTF-8: \xe5\x8f\x91\xe7\xa5\xa8 \xf0\x9f\x93\xa7\n"
            b"all high bytes: " + high + b"\n"
            b"tab\tand escape \x1b[0m\n")
    m = mkmsg("8bit", body, headers=b"Content-Type: text/plain; charset=unknown-8bit\n"
                                    b"Content-Transfer-Encoding: 8bit\n")
    dovecot.add_message("alice", m)
    ok(run("-f", config(), "run"))
    assert unreceived(pt.mbox_messages(tmp / "inbox.mbox")) == [m]


def test_mbox_created_0600(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("mode"))
    ok(run("-f", config(), "run"))
    assert mode(tmp / "inbox.mbox") == 0o600


def test_mbox_appends_to_existing_file(dovecot, config, run, tmp):
    existing = gen.mboxrd_bytes([mkmsg("old1"), mkmsg("old2")])
    (tmp / "inbox.mbox").write_bytes(existing)
    os.chmod(tmp / "inbox.mbox", 0o600)
    new = [mkmsg("new1"), mkmsg("new2", b"From inside\n")]
    dovecot.add_messages("alice", new)
    ok(run("-f", config(), "run"))
    raw = (tmp / "inbox.mbox").read_bytes()
    assert raw.startswith(existing)
    got = pt.mbox_messages(tmp / "inbox.mbox")
    assert len(got) == 4
    assert unreceived(got[2:]) == new


# --------------------------------------------------------------------------
# Received: header

def test_received_header_names_server_and_uidl(dovecot, config, run, tmp):
    msgs = [mkmsg(f"recv{i}") for i in range(3)]
    dovecot.add_messages("alice", msgs)
    ids = uidls(dovecot)
    assert len(ids) == 3
    ok(run("-f", config(), "run"))
    got = pt.mbox_messages(tmp / "inbox.mbox")
    assert len(got) == 3
    for m, uid, orig in zip(got, ids, msgs):
        assert m.startswith(b"Received:"), m[:200]
        rcv = pt.header_values(m, "Received")[0]
        assert dovecot.host in rcv, rcv
        assert re.search(r"\bid " + re.escape(uid) + r"\b", rcv), (uid, rcv)
        assert pt.strip_header(m, "Received", 1) == orig


def test_received_header_no(dovecot, config, run, tmp):
    msgs = [mkmsg("norecv1"), gen.message(0, seed=7)]
    dovecot.add_messages("alice", msgs)
    ok(run("-f", config(received_header="no"), "run"))
    assert pt.mbox_messages(tmp / "inbox.mbox") == msgs   # byte-exact, nothing added


# --------------------------------------------------------------------------
# Maildir

def test_maildir_delivery(dovecot, config, run, tmp):
    md = tmp / "Mail" / "inbox"
    msgs = gen.generate(24, seed=303)
    dovecot.add_messages("alice", msgs)
    cfg = config(deliver=f"maildir {md}")
    r = ok(run("-f", cfg, "run"))
    for sub in ("tmp", "new", "cur"):
        assert (md / sub).is_dir(), sub
    files = sorted((md / "new").iterdir())
    assert len(files) == 24
    assert list((md / "cur").iterdir()) == []
    assert list((md / "tmp").iterdir()) == []
    names = [f.name for f in files]
    assert len(set(names)) == 24
    for f in files:
        assert mode(f) == 0o600, (f, oct(mode(f)))
        assert not f.name.startswith(".")
        assert "/" not in f.name
    got = unreceived([f.read_bytes() for f in files])
    assert sorted(got) == sorted(msgs)
    assert dovecot.count("alice") == 0
    assert summaries(r.stderr)["test"]["delivered"] == 24

    # a second batch: names still unique, old files untouched
    more = [mkmsg(f"md2-{i}") for i in range(10)]
    dovecot.add_messages("alice", more)
    ok(run("-f", cfg, "run"))
    files2 = sorted((md / "new").iterdir())
    assert len(files2) == 34
    assert set(names) <= {f.name for f in files2}
    got2 = unreceived([f.read_bytes() for f in files2 if f.name not in names])
    assert sorted(got2) == sorted(more)


# --------------------------------------------------------------------------
# keep, --all, run ACCOUNT

def test_keep_yes_then_keep_no(dovecot, config, run, tmp):
    msgs = [mkmsg(f"keep{i}") for i in range(5)]
    dovecot.add_messages("alice", msgs)
    r = ok(run("-f", config(keep="yes"), "run"))
    assert unreceived(pt.mbox_messages(tmp / "inbox.mbox")) == msgs
    assert dovecot.messages("alice") == msgs                 # left on the server
    s = summaries(r.stderr)["test"]
    assert (s["new"], s["delivered"], s["deleted"]) == (5, 5, 0)
    assert s["kept"] == 5
    snapshot = (tmp / "inbox.mbox").read_bytes()

    r = ok(run("-f", config(keep="yes"), "-v", "run"))        # rerun: nothing new
    assert (tmp / "inbox.mbox").read_bytes() == snapshot
    assert "C: RETR" not in r.stderr
    assert dovecot.count("alice") == 5
    s = summaries(r.stderr)["test"]
    assert (s["new"], s["delivered"], s["deleted"]) == (0, 0, 0)

    r = ok(run("-f", config(keep="no"), "-v", "run"))         # now delete, no re-delivery
    assert (tmp / "inbox.mbox").read_bytes() == snapshot
    assert "C: RETR" not in r.stderr
    assert dovecot.count("alice") == 0
    s = summaries(r.stderr)["test"]
    assert (s["new"], s["delivered"], s["deleted"]) == (0, 0, 5)


def test_run_all_refetches_seen_messages(dovecot, config, run, tmp):
    msgs = [mkmsg(f"all{i}") for i in range(4)]
    dovecot.add_messages("alice", msgs)
    cfg = config(keep="yes")
    ok(run("-f", cfg, "run"))
    ok(run("-f", cfg, "run"))
    assert unreceived(pt.mbox_messages(tmp / "inbox.mbox")) == msgs
    r = ok(run("-f", cfg, "run", "--all"))
    assert unreceived(pt.mbox_messages(tmp / "inbox.mbox")) == msgs + msgs
    assert summaries(r.stderr)["test"]["delivered"] == 4
    assert dovecot.count("alice") == 4


def two_accounts(dovecot, config, tmp, **keys):
    second = pt.account_config(dovecot, "bob", name="two",
                               deliver=f"mbox {tmp / 'bob.mbox'}", **keys)
    return config(name="one", extra="\n" + second, **keys)


def test_run_one_account_of_two(dovecot, config, run, tmp):
    a = [mkmsg(f"alice{i}") for i in range(2)]
    b = [mkmsg(f"bob{i}") for i in range(3)]
    dovecot.add_messages("alice", a)
    dovecot.add_messages("bob", b)
    cfg = two_accounts(dovecot, config, tmp)
    r = ok(run("-f", cfg, "run", "two"))
    assert unreceived(pt.mbox_messages(tmp / "bob.mbox")) == b
    assert not (tmp / "inbox.mbox").exists() or pt.mbox_messages(tmp / "inbox.mbox") == []
    assert dovecot.count("alice") == 2 and dovecot.count("bob") == 0
    assert set(summaries(r.stderr)) == {"two"}, r.stderr

    r = ok(run("-f", cfg, "run"))                 # both: only alice's are new
    assert set(summaries(r.stderr)) == {"one", "two"}
    assert unreceived(pt.mbox_messages(tmp / "inbox.mbox")) == a
    assert unreceived(pt.mbox_messages(tmp / "bob.mbox")) == b
    assert dovecot.count("alice") == 0


def test_run_unknown_account_is_usage_error(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("unknown"))
    r = run("-f", config(), "run", "nosuchaccount")
    assert r.returncode == 64, r.stderr
    assert "nosuchaccount" in r.stderr
    assert dovecot.count("alice") == 1
    assert not (tmp / "inbox.mbox").exists()


def test_json_summary(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [mkmsg(f"j{i}") for i in range(3)])
    dovecot.add_messages("bob", [mkmsg(f"jb{i}") for i in range(2)])
    cfg = two_accounts(dovecot, config, tmp)
    r = ok(run("-f", cfg, "run", "--json"))
    data = json.loads(r.stdout)
    accts = {a["account"]: a for a in data["accounts"]}
    assert set(accts) == {"one", "two"}
    for name, n in (("one", 3), ("two", 2)):
        a = accts[name]
        assert (a["new"], a["delivered"], a["kept"], a["deleted"]) == (n, n, 0, n), a
    assert data.get("exit", 0) == 0
    # a rerun: valid JSON, zero counts
    data = json.loads(ok(run("-f", cfg, "run", "--json")).stdout)
    assert all(a["new"] == 0 and a["delivered"] == 0 for a in data["accounts"])


# --------------------------------------------------------------------------
# state

def test_state_database(dovecot, config, run, tmp):
    msgs = [mkmsg(f"st{i}") for i in range(4)]
    dovecot.add_messages("alice", msgs)
    ids = uidls(dovecot)
    db = tmp / "state.db"
    ok(run("-f", config(keep="yes"), "run"))
    for f in [db] + [p for p in tmp.iterdir() if p.name.startswith("state.db-")]:
        assert mode(f) & 0o077 == 0, (f, oct(mode(f)))
    con = sqlite3.connect(db)
    try:
        rows = dict(con.execute("SELECT uidl, state FROM messages WHERE account='test'"))
        assert rows == {u: "delivered" for u in ids}, rows
        mids = {r[0].strip("<> ") for r in con.execute(
            "SELECT message_id FROM messages WHERE account='test'")}
        assert mids == {message_id(m).strip("<> ") for m in msgs}
        runs = con.execute("SELECT account, delivered, deleted FROM runs").fetchall()
        assert runs == [("test", 4, 0)], runs
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        con.close()

    ok(run("-f", config(keep="no"), "run"))
    con = sqlite3.connect(db)
    try:
        rows = dict(con.execute("SELECT uidl, state FROM messages WHERE account='test'"))
        assert rows == {u: "deleted" for u in ids}, rows
        assert con.execute("SELECT count(*) FROM runs WHERE account='test'").fetchone()[0] == 2
    finally:
        con.close()
    assert mode(db) & 0o077 == 0


def test_empty_polls_share_a_run_row(dovecot, config, run, tmp):
    """Polls that find nothing, one after another, are one row of runs
    (its polls column counts them): a daemon polling a thousand accounts
    a minute would otherwise add a row per poll, 1.4 million a day."""
    dovecot.add_message("alice", mkmsg("one"))
    cfg = config(keep="yes")
    for _ in range(4):   # 1 new, then three empty polls
        ok(run("-f", cfg, "run"))
    dovecot.add_message("alice", mkmsg("two"))
    for _ in range(2):   # 1 new, one empty
        ok(run("-f", cfg, "run"))
    con = sqlite3.connect(tmp / "state.db")
    try:
        rows = con.execute("SELECT new, delivered, status, polls FROM runs "
                           "WHERE account='test' ORDER BY id").fetchall()
    finally:
        con.close()
    assert rows == [(1, 1, 0, 1), (0, 0, 0, 3), (1, 1, 0, 1), (0, 0, 0, 1)], rows
    st = json.loads(ok(run("-f", cfg, "status", "--json")).stdout)["accounts"][0]
    assert st["last_run"] and st["last_exit"] == 0, st


def test_state_catches_up_after_crash_between_quit_and_commit(dovecot, config, run, tmp):
    """A run killed after the server acknowledged QUIT (messages expunged)
    but before it recorded that leaves rows in state 'delivered' for UIDLs
    that are gone.  The next run must not leave them 'delivered' forever."""
    msgs = [mkmsg(f"gone{i}") for i in range(3)]
    dovecot.add_messages("alice", msgs)
    ids = uidls(dovecot)
    ok(run("-f", config(), "run"))
    assert dovecot.count("alice") == 0
    con = sqlite3.connect(tmp / "state.db")
    with con:
        con.execute("UPDATE messages SET state='delivered' WHERE account='test'")
    con.close()
    snapshot = (tmp / "inbox.mbox").read_bytes()
    ok(run("-f", config(), "run"))
    assert (tmp / "inbox.mbox").read_bytes() == snapshot
    con = sqlite3.connect(tmp / "state.db")
    try:
        rows = dict(con.execute("SELECT uidl, state FROM messages WHERE account='test'"))
    finally:
        con.close()
    # gone from the server: recorded as deleted (or forgotten), not "delivered"
    assert all(rows.get(u, "deleted") == "deleted" for u in ids), rows


# --------------------------------------------------------------------------
# MDA

MDA_SCRIPT = """#!/bin/sh
# test MDA: $1 = output dir; the message comes on stdin
n=$(date +%s%N)
cat > "$1/msg.$n.$$" || exit 74
printf '%s\\n' "$#" "$@" > "$1/args.$n.$$"
exit 0
"""

MDA_TEMPFAIL = """#!/bin/sh
cat > /dev/null
echo "mda: try again later" >&2
exit 75
"""


def write_script(path, text):
    path.write_text(text)
    os.chmod(path, 0o755)
    return path


def test_mda_delivery(dovecot, config, run, tmp):
    out = tmp / "mda-out"
    out.mkdir()
    mda = write_script(tmp / "mda.sh", MDA_SCRIPT)
    msgs = [mkmsg("mda1", b"From here\n.\nend\n"), gen.message(3, seed=9)]
    dovecot.add_messages("alice", msgs)
    ok(run("-f", config(deliver=f"mda {mda} {out} extra-arg"), "run"))
    got = [p.read_bytes() for p in sorted(out.glob("msg.*"))]
    assert len(got) == 2
    assert sorted(unreceived(got)) == sorted(msgs)   # exact, no From_ line, no quoting
    for p in out.glob("args.*"):
        assert p.read_text().split("\n")[:3] == ["2", str(out), "extra-arg"]
    assert dovecot.count("alice") == 0


def test_mda_tempfail_leaves_message_on_server(dovecot, config, run, tmp):
    bad = write_script(tmp / "mda-fail.sh", MDA_TEMPFAIL)
    msgs = [mkmsg("mdafail1"), mkmsg("mdafail2")]
    dovecot.add_messages("alice", msgs)
    r = run("-f", config(deliver=f"mda {bad}"), "run")
    assert r.returncode == 75, r.stderr
    assert dovecot.messages("alice") == msgs
    # the next run with a working MDA delivers them (they were not marked done)
    out = tmp / "mda-out"
    out.mkdir()
    good = write_script(tmp / "mda.sh", MDA_SCRIPT)
    ok(run("-f", config(deliver=f"mda {good} {out}"), "run"))
    got = [p.read_bytes() for p in sorted(out.glob("msg.*"))]
    assert sorted(unreceived(got)) == sorted(msgs)
    assert dovecot.count("alice") == 0


# --------------------------------------------------------------------------
# a large message, streamed

def big_message(mb: int) -> bytes:
    line = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ABCDEFGHIJKL\n"
    n = mb * 1024 * 1024 // len(line)
    body = bytearray()
    for i in range(n):
        if i % 1000 == 0:
            body += b".dot line %d\nFrom line %d\n" % (i, i)
        body += line
    return mkmsg("big", bytes(body),
                 headers=b"Content-Type: application/octet-stream\n"
                         b"Content-Transfer-Encoding: base64\n")


def peak_rss_run(popsift, cfg):
    """Run popsift; return (CompletedProcess, peak RSS in KB)."""
    if os.path.exists("/usr/bin/time"):
        cmd = ["/usr/bin/time", "-f", "maxrss=%M"]
    else:   # a fresh interpreter whose only child is popsift
        cmd = ["/usr/bin/python3", "-c",
               "import resource, subprocess, sys\n"
               "rc = subprocess.run(sys.argv[1:]).returncode\n"
               "m = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
               "print(f'maxrss={m}', file=sys.stderr)\n"
               "sys.exit(rc)\n"]
    r = subprocess.run(cmd + [str(popsift), "-f", str(cfg), "run"],
                       capture_output=True, text=True, errors="replace", timeout=120)
    m = re.search(r"maxrss=(\d+)\s*$", r.stderr)
    assert m, r.stderr
    return r, int(m.group(1))


def test_large_message_byte_exact_and_flat_memory(dovecot, config, run, popsift, tmp):
    # baseline: a 1 MB message
    dovecot.add_message("alice", big_message(1))
    r, rss_small = peak_rss_run(popsift, config(deliver=f"mbox {tmp / 'small.mbox'}"))
    assert r.returncode == 0, r.stderr

    big = big_message(30)
    small = mkmsg("after-big")
    dovecot.add_messages("alice", [big, small])
    cfg = config()
    t0 = time.monotonic()
    r, rss_kb = peak_rss_run(popsift, cfg)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    got = pt.mbox_messages(tmp / "inbox.mbox")
    assert len(got) == 2
    assert unreceived(got)[0] == big
    assert unreceived(got)[1] == small
    assert dovecot.count("alice") == 0
    print(f"30 MB message: {elapsed:.2f} s, peak RSS {rss_kb} KB (1 MB message: {rss_small} KB)")
    assert rss_kb < 20 * 1024 * pt.RSS_SCALE, f"peak RSS {rss_kb} KB for a 30 MB message"
    assert rss_kb - rss_small < 8 * 1024 * pt.RSS_SCALE, \
        f"peak RSS grows with message size: {rss_small} KB for 1 MB, {rss_kb} KB for 30 MB"
    s = summaries(r.stderr)["test"]
    assert s["delivered"] == 2
    mbs = float(SUMMARY_RE.match(next(ln for ln in r.stderr.splitlines()
                                      if SUMMARY_RE.match(ln)))["mb"])
    assert 30.0 <= mbs <= 34.0, r.stderr
