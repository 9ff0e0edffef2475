"""Issue 13, the core: losses and duplicates found by reading fetch*.c,
state.c and util.c, each shown the way a user would meet it (see
doc/crash-safety.md for the contract these tests hold popsift to)."""
import os
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
