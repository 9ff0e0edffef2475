"""compat_fixtures.py — the fixtures every tests/integration/test_compat*.py
file needs, made once: a factory that starts a server class and stops it
after the test (its log tail printed when the test failed), a writer of a
one-account config for that server, and the messages delivered."""

from __future__ import annotations

import os
import re

import pytest

import popsift_test as pt
import servers


def server_factory(cls, name: str, **defaults):
    """A fixture returning make(**kw) -> a started cls(**defaults, **kw)."""
    @pytest.fixture
    def make(request):
        if os.geteuid() != 0:
            pytest.fail(f"the compatibility tests start {name} and must run as root")
        started = []

        def new(**kw):
            s = cls(**{**defaults, **kw})
            started.append(s)
            return s

        yield new
        for s in started:
            rep = getattr(request.node, "rep_call", None)
            if rep is None or rep.failed:
                print(f"--- {name} log {s.log_path} (tail)\n{s.log_tail(60)}")
            s.stop()
    return make


def config_writer(account: str, **defaults):
    """A fixture returning write(server, user="alice", **keys) -> the path
    of a config with one account named `account` on server: mbox
    delivery and a state file in the test's tmp; `tls on` goes to the
    server's POP3S port."""
    @pytest.fixture
    def config(tmp):
        def write(server, user="alice", **keys):
            keys = {"deliver": f"mbox {tmp / 'inbox.mbox'}", "state": tmp / "state.db",
                    **defaults, **keys}
            if keys.get("tls") == "on" and getattr(server, "port_ssl", None):
                keys.setdefault("port", server.port_ssl)
            return pt.write_config(tmp / "config",
                                   servers.account_config(server, user, name=account, **keys))
        return write
    return config


def delivered(path, served=lambda m: m) -> list[bytes]:
    """The messages of the mbox at path, each without the Received header
    popsift puts first (checked), passed through served()."""
    out = []
    for m in pt.mbox_messages(path):
        assert m.startswith(b"Received:"), m[:200]
        out.append(served(pt.strip_header(m, "Received")))
    return out


def assert_pipelined(stderr: str, account: str) -> None:
    """RETR 2 went out before the reply to RETR 1 came back (-v trace)."""
    lines = stderr.splitlines()
    i1 = lines.index(f"{account}: C: RETR 1")
    i2 = lines.index(f"{account}: C: RETR 2")
    first_reply = next(i for i in range(i1 + 1, len(lines))
                       if lines[i].startswith(f"{account}: S: "))
    assert i2 < first_reply, "\n".join(lines[i1:i1 + 10])


def check_header_rules_use_top(server, write_config, run, tmp, **keys):
    """Header-only rules are decided from TOP n 0: the skipped big message
    is never RETRieved and stays, the discarded one is deleted unread.
    Returns the config, for a rerun."""
    big = servers.mkmsg("big", b"v" * 300_000 + b"\n", subject="holiday video")
    spam = servers.mkmsg("spam", b"s" * 1000 + b"\n", subject="[SPAM] win")
    ok = servers.mkmsg("ok", subject="hello")
    server.add_messages("alice", [big, spam, ok])
    rules = tmp / "r.rules"
    rules.write_text("match size > 100K  skip\n"
                     "match header \"Subject\" =~ /\\[SPAM\\]/  discard\n")
    cfg = write_config(server, rules=rules, **keys)
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert re.search(r"C: TOP \d+ 0", r.stderr), r.stderr
    assert "C: RETR 3" in r.stderr
    assert "C: RETR 1" not in r.stderr and "C: RETR 2" not in r.stderr
    assert "C: DELE 2" in r.stderr and "C: DELE 1" not in r.stderr
    message_id = servers.message_id
    assert [message_id(m) for m in pt.mbox_messages(tmp / "inbox.mbox")] == [message_id(ok)]
    assert [message_id(m) for m in server.messages("alice")] == [message_id(big)]
    return cfg
