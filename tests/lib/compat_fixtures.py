"""compat_fixtures.py — the fixtures every tests/integration/test_compat*.py
file needs, made once: a factory that starts a server class and stops it
after the test (its log tail printed when the test failed), and a writer
of a one-account config for that server."""

from __future__ import annotations

import os

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
