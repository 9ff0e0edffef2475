"""The envelope an MDA gets (issue 15): %F/%T in its words, SENDER,
RECIPIENT, ORIGINAL_RECIPIENT in its environment, checked so a forged
sender never becomes an option or shell syntax; with real MDAs: procmail
-f %F (the From_ line carries the sender) and dovecot-lda -f %F -d %T
(the message lands in the test Dovecot user's Maildir, Return-Path =
sender).

Run:  POPSIFT=$PWD/popsift /usr/bin/python3 -m pytest -q tests/integration/test_envelope.py
"""

import os
import re
import shutil

import pytest

import popsift_test as pt

ARGS_MDA = """#!/bin/sh
# argv, then the envelope variables, one per line; the message to msg.N
n=$(date +%s%N)
cat > "$OUT/msg.$n.$$" || exit 74
{ printf '%s\\n' "$@"; printf 'SENDER=%s\\nRECIPIENT=%s\\nORIG=%s\\n' \
  "$SENDER" "$RECIPIENT" "$ORIGINAL_RECIPIENT"; } > "$OUT/args.$n.$$"
"""


def script(path, text):
    path.write_text(text)
    os.chmod(path, 0o755)
    return path


def msg(n, head=b""):
    return head + b"From: Alice Example <alice@example.org>\nSubject: env %d\n\nbody %d\n" % (n, n)


def outputs(out):
    return sorted((p.read_text().split("\n")[:-1] for p in out.glob("args.*")),
                  key=lambda a: a[1])


def test_mda_envelope_words_and_environment(dovecot, config, run, tmp):
    out = tmp / "out"
    out.mkdir()
    mda = script(tmp / "mda.sh", ARGS_MDA.replace("$OUT", str(out)))
    dovecot.add_messages("alice", [
        msg(1, b"Return-Path: <bounces+x=y@lists.example.com>\n"),
        msg(2),                                   # no Return-Path: the From address
        msg(3, b"Return-Path: <>\n"),             # a bounce: the null sender
        msg(4, b"Return-Path: <-oQ/tmp/x@evil.example>\n"),    # an option
        msg(5, b"Return-Path: <\"$(touch pwned)\"@evil.example>\n"),   # shell syntax
    ])
    r = run("-f", config(deliver=f"mda {mda} %F -f%F %T 100%% 50% %X", mda_rcpt="bob"), "run")
    assert r.returncode == 0, r.stderr
    got = outputs(out)
    assert len(got) == 5, got
    tail = ["bob", "100%", "50%", "%X"]
    seen = {}
    for a in got:
        assert a[2:6] == tail, a
        assert a[6:] == [f"SENDER={a[0]}", "RECIPIENT=bob", "ORIG=bob"], a
        assert a[1] == "-f" + a[0]
        seen[a[0]] = seen.get(a[0], 0) + 1
    # the bounce and the two forged senders become the null sender
    assert seen == {"bounces+x=y@lists.example.com": 1, "alice@example.org": 1, "": 3}, seen
    assert not (tmp / "pwned").exists() and not list(tmp.glob("**/pwned"))


def test_mda_recipient_defaults_to_the_local_user(dovecot, config, run, tmp):
    out = tmp / "out"
    out.mkdir()
    mda = script(tmp / "mda.sh", ARGS_MDA.replace("$OUT", str(out)))
    dovecot.add_messages("alice", [msg(1)])
    r = run("-f", config(deliver=f"mda {mda} %T"), "run", env={"USER": "someone"})
    assert r.returncode == 0, r.stderr
    assert outputs(out)[0][:3] == ["someone", "SENDER=alice@example.org", "RECIPIENT=someone"]


def test_rule_mda_gets_the_envelope(dovecot, config, run, tmp):
    out = tmp / "out"
    out.mkdir()
    mda = script(tmp / "mda.sh", ARGS_MDA.replace("$OUT", str(out)))
    rules = tmp / "rules"
    rules.write_text(f'match header "Subject" =~ /env/ mda {mda} -f %F -- %T\n')
    dovecot.add_messages("alice", [msg(1, b"Return-Path: <list@example.com>\n")])
    r = run("-f", config(rules=rules, mda_rcpt="carol"), "run")
    assert r.returncode == 0, r.stderr
    assert outputs(out)[0][:4] == ["-f", "list@example.com", "--", "carol"]


@pytest.mark.skipif(shutil.which("procmail") is None, reason="procmail not installed")
def test_procmail_from_line_carries_the_sender(dovecot, config, run, tmp):
    home = tmp / "home"
    home.mkdir()
    mbox = tmp / "procmail.mbox"
    rc = home / ".procmailrc"
    rc.write_text(f"DEFAULT={mbox}\nLOGFILE={tmp}/procmail.log\n")
    os.chmod(rc, 0o600)
    dovecot.add_messages("alice", [msg(1, b"Return-Path: <owner-list@example.com>\n"), msg(2)])
    r = run("-f", config(deliver=f"mda /usr/bin/procmail -f %F {rc}"), "run",
            env={"HOME": str(home)})
    assert r.returncode == 0, r.stderr
    froms = sorted(l.split()[1] for l in mbox.read_text().splitlines() if l.startswith("From "))
    assert froms == ["alice@example.org", "owner-list@example.com"], mbox.read_text()


LDA = "/usr/lib/dovecot/dovecot-lda"


@pytest.mark.skipif(not os.access(LDA, os.X_OK), reason="dovecot-lda not installed")
def test_dovecot_lda_sender_and_recipient(make_dovecot, config, run, tmp):
    dc = make_dovecot(users={"alice": "secret", "bob": "secret"})
    dc.add_messages("alice", [msg(1, b"Return-Path: <owner@lists.example.com>\n"), msg(2)])
    r = run("-f", config(server=dc, tls="off", mda_rcpt="bob",
                         deliver=f"mda {LDA} -c {dc.conf_path} -o deliver_log_format=env=%e "
                                 f"-f %F -d %T"), "run")
    assert r.returncode == 0, r.stderr
    got = dc.messages("bob")
    assert len(got) == 2
    # dovecot-lda adds no Return-Path (its MTA would): it logs the
    # envelope sender it was given (%e) for user bob (-d)
    senders = sorted(re.findall(r"lda\(bob\)<.*Info: env=(\S*)", dc.log_tail(50)))
    assert senders == ["alice@example.org", "owner@lists.example.com"], dc.log_tail(50)
    assert dc.count("alice") == 0


# --------------------------------------------------------------------------
# domain mailboxes: a catch-all mailbox routed by the provider's envelope headers

ROUTE_KEYS = dict(
    envelope_header=["X-Original-To", "Delivered-To"],
    local_domains="example.org example.net",
    local_user=["bob@example.org bob", "carol@example.org carol", "Dave@Example.NET dave"],
    default_user="postmaster",
    lmtp_rcpt="catchall",
)


def dm(subject, *heads):
    h = b"".join(b"%s\n" % x.encode() for x in heads)
    return h + b"From: Sender <sender@example.com>\nSubject: %s\n\nbody of %s\n" % (
        subject.encode(), subject.encode())


DOMAIN_MAILBOX = [
    dm("for-bob", "Delivered-To: catchall@provider.net", "X-Original-To: bob@example.org"),
    dm("for-carol", "Delivered-To: carol@example.org", "Delivered-To: catchall@provider.net"),
    dm("for-dave", "Delivered-To: catchall@provider.net", "X-Original-To: dave@example.net"),
    dm("for-bob-and-carol", "X-Original-To: bob@example.org", "X-Original-To: carol@example.org",
       "Delivered-To: catchall@provider.net"),
    dm("bob-twice", "X-Original-To: bob@example.org", "X-Original-To: BOB@example.org"),
    dm("unknown", "X-Original-To: nobody@example.org"),
    dm("foreign", "X-Original-To: someone@foreign.example", "Delivered-To: catchall@provider.net"),
    dm("to-header-only", "To: dave@example.net", "Cc: carol@example.org"),
    # came back: local delivery stamped "Delivered-To: bob" on it before
    dm("loop-bob", "X-Original-To: bob@example.org", "Delivered-To: bob"),
    dm("loop-bob-new-carol", "X-Original-To: bob@example.org", "X-Original-To: carol@example.org",
       "Delivered-To: bob"),
]


def subjects(dc, user):
    return sorted(pt.header_values(m, "Subject")[0].strip() for m in dc.messages(user))


def test_domain_mailbox_over_lmtp(make_dovecot, config, run, tmp):
    users = {u: "secret" for u in ("alice", "bob", "carol", "dave", "postmaster", "catchall")}
    dc = make_dovecot(users=users, lmtp=True)
    dc.add_messages("alice", DOMAIN_MAILBOX)
    r = run("-f", config(server=dc, tls="off", received_header="no",
                         deliver=f"lmtp unix:{dc.lmtp_socket}", **ROUTE_KEYS), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert subjects(dc, "bob") == ["bob-twice", "for-bob", "for-bob-and-carol"]
    assert subjects(dc, "carol") == ["for-bob-and-carol", "for-carol", "loop-bob-new-carol"]
    assert subjects(dc, "dave") == ["for-dave"]
    assert subjects(dc, "postmaster") == ["unknown"]
    assert subjects(dc, "catchall") == ["foreign", "to-header-only"]
    assert dc.count("alice") == 0
    assert r.stderr.count("mail loop") == 2, r.stderr
    assert "bob had it already" in r.stderr
    # a copy for one recipient says whom it was delivered to, as the loop
    # rule expects (Dovecot stamps no Delivered-To for several: Bcc)
    for user in ("bob", "carol", "dave"):
        for m in dc.messages(user):
            if b"and-carol" not in m and b"new-carol" not in m:
                assert pt.header_values(m, "Delivered-To")[0].strip() == user, m


def test_domain_mailbox_mda_runs_once_per_recipient(dovecot, config, run, tmp):
    out = tmp / "out"
    out.mkdir()
    mda = script(tmp / "mda.sh", ARGS_MDA.replace("$OUT", str(out)))
    dovecot.add_messages("alice", [DOMAIN_MAILBOX[3], DOMAIN_MAILBOX[6]])
    keys = dict(ROUTE_KEYS, lmtp_rcpt=None, mda_rcpt="catchall")
    r = run("-f", config(deliver=f"mda {mda} -f %F -d %T", **keys), "run")
    assert r.returncode == 0, r.stderr
    runs = sorted(a[3:] for a in outputs(out))
    assert runs == [
        ["bob", "SENDER=sender@example.com", "RECIPIENT=bob", "ORIG=bob@example.org"],
        ["carol", "SENDER=sender@example.com", "RECIPIENT=carol", "ORIG=carol@example.org"],
        ["catchall", "SENDER=sender@example.com", "RECIPIENT=catchall", "ORIG=catchall"],
    ], runs


def test_domain_mailbox_dovecot_lda(make_dovecot, config, run, tmp):
    users = {u: "secret" for u in ("alice", "bob", "carol", "dave", "postmaster")}
    dc = make_dovecot(users=users)
    dc.add_messages("alice", DOMAIN_MAILBOX[:4])
    keys = dict(ROUTE_KEYS, lmtp_rcpt=None)
    r = run("-f", config(server=dc, tls="off", deliver=f"mda {LDA} -c {dc.conf_path} -f %F -d %T",
                         **keys), "run")
    assert r.returncode == 0, r.stderr
    assert subjects(dc, "bob") == ["for-bob", "for-bob-and-carol"]
    assert subjects(dc, "carol") == ["for-bob-and-carol", "for-carol"]
    assert subjects(dc, "dave") == ["for-dave"]


@pytest.mark.parametrize("keys,error", [
    (dict(envelope_header="Delivered-To"), "needs local_domains"),
    (dict(local_domains="example.org"), "need envelope_header"),
    (dict(envelope_header="Delivered-To sometimes", local_domains="x.org"), "not all, first or last"),
    (dict(envelope_header="Delivered-To", local_domains="x.org", local_user="bob@x.org -rf"),
     "no plausible user name"),
])
def test_domain_mailbox_config_errors(dovecot, config, run, keys, error):
    r = run("-f", config(**keys), "run")
    assert r.returncode == 78 and error in r.stderr, r.stderr


def test_domain_mailbox_example_config_is_valid(run, tmp):
    conf = tmp / "domain-mailbox.conf"
    conf.write_bytes((pt.REPO_ROOT / "filters" / "domain-mailbox.conf").read_bytes())
    os.chmod(conf, 0o600)
    r = run("-f", conf, "check")
    assert r.returncode == 0, r.stderr


def test_domain_mailbox_through_the_local_mta(dovecot, config, run, tmp):
    exim = pytest.importorskip("exim")
    if exim.exim_binary() is None:
        pytest.skip("exim4 not installed")
    mta = exim.Exim(users=("bob", "carol", "dave"), domain="local.test")
    try:
        dovecot.add_messages("alice", DOMAIN_MAILBOX[:7])
        keys = dict(ROUTE_KEYS, lmtp_rcpt=None, default_user="dave@local.test",
                    local_user=["bob@example.org bob@local.test",
                                "carol@example.org carol@local.test",
                                "dave@example.net dave@local.test"])
        r = run("-f", config(smtp_host="127.0.0.1", smtp_port=mta.port, smtp_tls="off",
                             smtp_helo="popsift.test", received_header="no",
                             deliver="forward carol@local.test", **keys), "run")
        assert r.returncode == 0, r.stderr + mta.log()[-3000:]
        def subj(user, n):
            return sorted(pt.header_values(m, "Subject")[0].strip()
                          for m in mta.wait_for(user, n))
        assert subj("bob", 3) == ["bob-twice", "for-bob", "for-bob-and-carol"]
        assert subj("carol", 3) == ["for-bob-and-carol", "for-carol", "foreign"]
        assert subj("dave", 2) == ["for-dave", "unknown"]
        assert dovecot.count("alice") == 0
    finally:
        mta.stop()
