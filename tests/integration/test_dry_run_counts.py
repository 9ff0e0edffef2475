"""run --dry-run (issue 17): its summary says what a run would do, with
the same counts the real run then makes and `status` then shows; it
records no run, and --json stays one JSON document on stdout."""

import json
import uuid

import pytest

KEYS = ("new", "delivered", "kept", "deleted", "skipped", "failed")


def mkmsg(subject: str) -> bytes:
    return (f"From: s@example.com\nTo: alice@example.org\nSubject: {subject}\n"
            f"Message-ID: <{uuid.uuid4().hex}@popsift.test>\n\nbody\n").encode()


def counts(r):
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)["accounts"][0]
    return {k: a[k] for k in KEYS}


@pytest.mark.parametrize("keep", ["yes", "no"])
def test_dry_run_counts_are_the_real_runs(dovecot, config, run, tmp, keep):
    subjects = ["m0", "m1", "SPAM", "m3", "big-skip", "m5", "m6"]
    dovecot.add_messages("alice", [mkmsg(s) for s in subjects])
    rules = tmp / "r.rules"
    rules.write_text('match header "Subject" =~ /SPAM/  discard\n'
                     'match header "Subject" =~ /skip/  skip\n')
    cfg = config(keep=keep, rules=rules)

    dry = run("-f", cfg, "--dry-run", "--json", "run")
    want = counts(dry)                         # stdout is JSON alone
    assert json.loads(dry.stdout)["accounts"][0]["dry_run"] is True
    assert "SPAM" in dry.stderr                # the per-message lines went to stderr
    text = run("-f", cfg, "--dry-run", "run")
    assert "(dry run: what a run would do; nothing was done)" in text.stderr
    st = run("-f", cfg, "status")
    assert "last run" not in st.stdout or "never" in st.stdout, st.stdout
    assert dovecot.count("alice") == 7

    real = counts(run("-f", cfg, "--json", "run"))
    assert want == real
    assert real == {"new": 7, "delivered": 5, "kept": 5 if keep == "yes" else 0,
                    "deleted": 1 if keep == "yes" else 6, "skipped": 1, "failed": 0}
    st = run("-f", cfg, "status").stdout
    assert f"{real['delivered']} delivered, {real['deleted']} deleted" in st, st
    assert dovecot.count("alice") == 7 - real["deleted"]


def test_dry_run_counts_deletions_of_mail_delivered_before(dovecot, config, run, tmp):
    """keep switched off: mail an earlier run delivered and kept is deleted
    by the next run; the dry run says so too."""
    dovecot.add_messages("alice", [mkmsg(f"k{i}") for i in range(3)])
    assert run("-f", config(keep="yes"), "run").returncode == 0
    dovecot.add_message("alice", mkmsg("fresh"))
    cfg = config(keep="no")
    want = counts(run("-f", cfg, "--dry-run", "--json", "run"))
    assert want == counts(run("-f", cfg, "--json", "run"))
    assert want["deleted"] == 4 and want["new"] == 1 and want["delivered"] == 1
    assert dovecot.count("alice") == 0
