"""Issue 13: text from a server or a message never takes over a terminal or
a log.  A Subject (RFC 2047 encoded or raw), a Message-ID, a greeting or a
malformed reply full of ESC sequences, OSC titles, BEL, CR, LF, C1 controls
and bytes that are not UTF-8 is printed escaped by `log`, `status`,
`run --dry-run`, `-v`, error messages and the log file; `--json` keeps the
exact text (JSON-escaped)."""

import base64
import json
import os
import re
import subprocess

import popsift_test as pt

# an OSC title, a screen clear, CR, an encoded newline that forges a
# summary line, a C1 CSI (U+009B) and a bidi override
EVIL = "\x1b]0;owned\x07\x1b[2J\rX\nt: 99 new, 99 delivered\u009b31m\u202e!"
FORGED = re.compile(rb"^(\S+ )?t: 99 new", re.M)


def encoded(text):
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def message(tag, route):
    return (f"From: a@example.org\nTo: alice@example.org\n"
            f"Subject: {tag} {encoded(EVIL)}\n"
            f"X-Route: {route}\n").encode() + \
        b"Message-ID: <\x1b[31m" + tag.encode() + b"\x07\x9b@evil.example>\n\nbody\n"


def run_raw(*args):
    """popsift's output as bytes: a text decode would hide what it printed."""
    return subprocess.run([str(pt.popsift_path()), *map(str, args)],
                          capture_output=True, timeout=120)


def assert_clean(out, what, tabs=False):
    bad = rb"[\x00-\x08\x0b-\x1f\x7f]" if tabs else rb"[\x00-\x09\x0b-\x1f\x7f]"
    hit = re.search(bad, out)
    assert hit is None, f"{what}: raw control byte {hit.group()!r} in {out!r}"
    text = out.decode("utf-8")   # strict: no byte that is not UTF-8
    c1 = [c for c in text if 0x80 <= ord(c) <= 0x9f or c in "\u2028\u2029\u202e"]
    assert not c1, f"{what}: control characters {c1!r} in {text!r}"
    assert not FORGED.search(out), f"{what}: a forged line in {out!r}"


def test_hostile_subject_is_escaped_everywhere(dovecot, config, tmp):
    dovecot.add_message("alice", message("good", "mbox"))
    dovecot.add_message("alice", message("fail", "fail"))
    rules = tmp / "r.rules"
    rules.write_text('match header "X-Route" =~ /fail/ mda /bin/false\n'
                     f"match all mbox {tmp / 'inbox.mbox'}\n")
    cfg = config(rules=rules)

    dry = run_raw("-f", cfg, "-v", "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert b"good" in dry.stdout and b"\\x1b]0;owned\\x07" in dry.stdout, dry.stdout
    assert_clean(dry.stdout, "run --dry-run stdout")
    assert_clean(dry.stderr, "run --dry-run -v stderr")

    r = run_raw("-f", cfg, "-vv", "run")
    assert r.returncode != 0 and b"S: +OK" in r.stderr, r.stderr
    assert_clean(r.stderr, "run -vv stderr")
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1

    lg = run_raw("-f", cfg, "log")
    assert lg.returncode == 0 and lg.stdout.count(b"\n") == 2, lg.stdout
    assert b'good \\x1b]0;owned\\x07\\x1b[2J\\rX\\nt: 99 new' in lg.stdout, lg.stdout
    assert b"\\u009b31m\\u202e!" in lg.stdout, lg.stdout
    assert_clean(lg.stdout, "log")

    st = run_raw("-f", cfg, "status")
    assert st.returncode == 0 and b"not delivered" in st.stdout, st.stdout
    assert_clean(st.stdout, "status")

    js = json.loads(run_raw("-f", cfg, "log", "--json").stdout)
    subjects = sorted(e["subject"] for e in js)
    assert subjects == ["fail " + EVIL, "good " + EVIL], "--json keeps the exact text"


def test_filter_dry_run_escapes_c1_and_bad_utf8(tmp):
    rules = tmp / "r.rules"
    rules.write_text("match all discard\n")
    msg = (f"Subject: {encoded(EVIL)}\n\nbody\n").encode()
    r = run_raw_input(["filter", "-r", rules, "--dry-run"], msg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"\n") == 1 and r.stdout.count(b"\t") == 2, r.stdout
    assert_clean(r.stdout, "filter --dry-run", tabs=True)


def run_raw_input(args, data):
    return subprocess.run([str(pt.popsift_path()), *map(str, args)], input=data,
                          capture_output=True, timeout=120)


GREETING = b"+OK \x1b]0;pwned\x07\x1b[2J\rt: 99 new, 99 delivered\xc2\x9b\xff ready\r\n"
UIDL_REPLY = b"\x1b[31mHELLO\x07\rt: 99 new\xc2\x85\r\n"


def fake_config(srv, tmp, **defaults):
    text = pt.account_config(srv, "alice", name="fake", tls="off", auth="user", timeout=5,
                             deliver=f"mbox {tmp / 'inbox.mbox'}", state=tmp / "state.db",
                             defaults=defaults)
    return pt.write_config(tmp / "config", text)


def test_hostile_server_lines_are_escaped(fake, tmp):
    msgs = [b"From: a@example.org\nSubject: one\n\nbody\n"]
    srv = fake(msgs, greeting_line=GREETING, raw={"UIDL": UIDL_REPLY})
    cfg = fake_config(srv, tmp)
    r = run_raw("-f", cfg, "-v", "run")
    assert r.returncode == 69, r.stderr
    assert b"HELLO" in r.stderr and b"\\x1b]0;pwned" in r.stderr, r.stderr
    assert_clean(r.stderr, "-v and the error")
    assert not srv.deleted


def test_hostile_server_lines_are_escaped_in_the_log_file(fake, tmp):
    msgs = [b"From: a@example.org\nSubject: one\n\nbody\n"]
    srv = fake(msgs, greeting_line=GREETING, raw={"UIDL": UIDL_REPLY})
    logfile = tmp / "popsift.log"
    cfg = fake_config(srv, tmp, log=logfile)
    r = run_raw("-f", cfg, "-v", "run")
    assert r.returncode == 69, r.stderr
    text = logfile.read_bytes()
    assert b"HELLO" in text and b"pwned" in text, text
    assert_clean(text, "log file")
    assert len(text.splitlines()) == text.count(b"fake: "), "one line per entry: " + repr(text)
