"""External filters (issue 15) with real ones from Debian: SpamAssassin's
spamd + spamc and bogofilter.  `filter CMD` runs the message through a
command and goes on with its output as the message; `pipe "CMD" returns
N [=~ /re/]` is a verdict that leaves the message alone.  A filter that
fails, hangs, says nothing or floods leaves the message on the server
(exit 75) and delivers nothing."""
import random
import re
import subprocess

import pytest

import popsift_test as pt
from spamd import Spamd

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _msg(name, subject, body):
    return (f"Message-ID: <{name}@filters>\nFrom: Ann <ann@example.org>\nTo: bob@example.org\n"
            f"Date: Wed, 02 Dec 2026 10:00:00 +0000\nSubject: {subject}\n\n{body}").encode()


SPAM = _msg("spam", "you win", f"{GTUBE}\n")
HAM = _msg("ham", "lunch", "See you at noon in the usual place.\n")


def _without(msg: bytes, prefix: bytes) -> bytes:
    """msg with the header fields starting with prefix (and their
    continuation lines) taken out."""
    head, sep, body = msg.partition(b"\n\n")
    out, skip = [], False
    for ln in head.split(b"\n"):
        if ln[:1] in (b" ", b"\t"):
            if not skip:
                out.append(ln)
            continue
        skip = ln.lower().startswith(prefix.lower())
        if not skip:
            out.append(ln)
    return b"\n".join(out) + sep + body


@pytest.fixture(scope="module")
def spamd():
    with Spamd() as sd:
        yield sd


def _run(run, config, rules, **keys):
    return run("-f", config(tls="off", rules=rules, received_header="no", **keys), "run")


def test_spamassassin_spam_sorted_ham_unchanged_but_for_its_headers(dovecot, config, run, tmp,
                                                                    spamd):
    dovecot.add_messages("alice", [SPAM, HAM])
    rules = tmp / "r.rules"
    rules.write_text(f"match all filter spamc -x {' '.join(spamd.spamc_args)}\n"
                     f'match header "X-Spam-Flag" =~ /^YES/ and header "X-Spam-Status" =~ '
                     f"/^Yes, score=/ mbox {tmp}/spam\n")
    r = _run(run, config, rules)
    assert r.returncode == 0, r.stderr
    spam, inbox = pt.mbox_messages(tmp / "spam"), pt.mbox_messages(tmp / "inbox.mbox")
    assert len(spam) == 1 and GTUBE.encode() in spam[0] and b"GTUBE" in spam[0]
    assert len(inbox) == 1
    assert re.search(rb"^X-Spam-Status: No, score=", inbox[0], re.M)
    assert _without(inbox[0], b"X-Spam-") == HAM, "ham is unchanged but for X-Spam-*"
    assert dovecot.count("alice") == 0


def test_spamc_verdict_leaves_the_message_alone(dovecot, config, run, tmp, spamd):
    dovecot.add_messages("alice", [SPAM, HAM])
    rules = tmp / "r.rules"
    rules.write_text(f'match pipe "spamc -c {" ".join(spamd.spamc_args)}" returns 1 '
                     f"=~ /^([0-9]+)[.0-9]*\\/5/ mbox {tmp}/score-$1\n")
    r = _run(run, config, rules)
    assert r.returncode == 0, r.stderr
    scored = list(tmp.glob("score-*"))
    assert len(scored) == 1 and int(scored[0].name[6:]) >= 1000, scored
    assert pt.mbox_messages(scored[0]) == [SPAM], "the message as it was"
    assert pt.mbox_messages(tmp / "inbox.mbox") == [HAM]


@pytest.fixture(scope="module")
def bogodb(tmp_path_factory):
    """A bogofilter word list trained on 20 spam and 20 ham."""
    db = tmp_path_factory.mktemp("bogo") / "db"
    for i in range(20):
        for kind in ("s", "n"):
            subprocess.run(["bogofilter", "-d", db, f"-{kind}"], check=True,
                           input=_bogo_msg(i, kind == "s"))
    return db


_SPAMW = "viagra casino lottery winner cheap pills prize money offer click free bonus".split()
_HAMW = "meeting agenda project report minutes review schedule budget draft team".split()


def _bogo_msg(i, spam):
    rnd = random.Random(i * 2 + spam)
    words = " ".join(rnd.choice(_SPAMW if spam else _HAMW) for _ in range(60))
    return _msg(f"{'s' if spam else 'h'}{i}", "spam" if spam else "notes", words + "\n")


def test_bogofilter_passthrough_then_rule_on_x_bogosity(dovecot, config, run, tmp, bogodb):
    spam, ham = _bogo_msg(100, True), _bogo_msg(101, False)
    dovecot.add_messages("alice", [spam, ham])
    rules = tmp / "r.rules"
    rules.write_text(f"match all filter bogofilter -d {bogodb} -p -e\n"
                     f'match header "X-Bogosity" =~ /^Spam,/ mbox {tmp}/spam\n')
    r = _run(run, config, rules)
    assert r.returncode == 0, r.stderr
    got_spam, inbox = pt.mbox_messages(tmp / "spam"), pt.mbox_messages(tmp / "inbox.mbox")
    assert [_without(m, b"X-Bogosity") for m in got_spam] == [spam]
    assert [_without(m, b"X-Bogosity") for m in inbox] == [ham]
    assert re.search(rb"^X-Bogosity: Ham,", inbox[0], re.M)


def test_bogofilter_verdict_by_exit_status(dovecot, config, run, tmp, bogodb):
    spam, ham = _bogo_msg(102, True), _bogo_msg(103, False)
    dovecot.add_messages("alice", [spam, ham])
    rules = tmp / "r.rules"
    # bogofilter without -p: exit 0 spam, 1 ham, 2 unsure
    rules.write_text(f'match pipe "bogofilter -d {bogodb}" returns 0 mbox {tmp}/spam\n')
    r = _run(run, config, rules)
    assert r.returncode == 0, r.stderr
    assert pt.mbox_messages(tmp / "spam") == [spam]
    assert pt.mbox_messages(tmp / "inbox.mbox") == [ham]


FAILING = {
    "exit 1": ('sh -c "cat >/dev/null; exit 1"', "exited with 1"),
    "hangs": ("sleep 600", "timed out"),
    "no output": ('sh -c "cat >/dev/null"', "gave no output"),
    "100 MB": ('sh -c "cat >/dev/null; head -c 100000000 /dev/zero"', "output larger than"),
    "not found": ("/nonexistent/filter", "exited with 127"),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_failing_filter_leaves_the_message_on_the_server(dovecot, config, run, tmp, case):
    cmd, why = FAILING[case]
    dovecot.add_messages("alice", [HAM])
    rules = tmp / "r.rules"
    rules.write_text(f"match all filter {cmd}\nmatch all mbox {tmp}/after\n")
    r = _run(run, config, rules, timeout=3)
    assert r.returncode == 75, r.stderr
    assert re.search(rf"r\.rules:1: filter \S+.*{re.escape(why)}", r.stderr), r.stderr
    assert not (tmp / "after").exists() and not (tmp / "inbox.mbox").exists()
    assert dovecot.count("alice") == 1, "the message stays on the server"


def test_failing_verdict_leaves_the_message_on_the_server(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [HAM])
    rules = tmp / "r.rules"
    rules.write_text(f'match pipe "sleep 600" mbox {tmp}/a\n')
    r = _run(run, config, rules, timeout=3)
    assert r.returncode == 75 and "pipe sleep: timed out" in r.stderr, r.stderr
    assert dovecot.count("alice") == 1 and not (tmp / "inbox.mbox").exists()


def test_cat_like_filter_with_a_20mb_message(dovecot, config, run, tmp):
    line = b"".join(bytes([97 + i % 26]) for i in range(76)) + b"\n"
    big = _msg("big", "big", "") + line * (20 * 1024 * 1024 // len(line))
    dovecot.add_messages("alice", [big])
    rules = tmp / "r.rules"
    rules.write_text("match all filter cat\n")
    r = _run(run, config, rules, timeout=60)
    assert r.returncode == 0, r.stderr
    got = pt.mbox_messages(tmp / "inbox.mbox")
    assert len(got) == 1 and got[0] == big
