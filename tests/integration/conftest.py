"""pytest fixtures for popsift's integration tests (run as root, /usr/bin/python3).

    dovecot          a fresh Dovecot per test: users alice/secret, bob/secret;
                     POP3 on dovecot.port (STLS offered), POP3S on
                     dovecot.port_ssl, CA in dovecot.cafile
    make_dovecot     factory for other settings: make_dovecot(users=..., extra_conf=...,
                     mechanisms=..., ssl=False, ...) — stopped after the test
    popsift          Path of the binary under test ($POPSIFT or ./popsift)
    tmp              a fresh temp dir (pathlib.Path)
    config           write a one-account config for alice on `dovecot`:
                         cfg = config(keep="yes", tls="starttls", ...)
                     defaults: tls on + tls_ca_file, auth any, keep no,
                     deliver mbox tmp/inbox.mbox, state tmp/state.db; file
                     tmp/config, mode 0600.  Keyword None drops a key.
                     config(user="bob", name="work", path=tmp/"c2", mode=0o644,
                            server=other_dovecot, defaults={...},
                            extra="account two\\n...")
    run              run(*args, **kw) -> CompletedProcess: the popsift
                     binary with args (text output; kw: env, timeout, input)
    fake             fake(messages, uidls="auto", **faults) -> a started
                     FakePop (tests/lib/fakepop.py), stopped after the test,
                     which fails if the fake server itself raised

On a failing test the tail of the Dovecot log is printed in the teardown
section.  POPSIFT_KEEP_TMP=1 keeps the Dovecot directories.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import popsift_test as pt  # noqa: E402
from fakepop import FakePop  # noqa: E402


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("integration tests start Dovecot and must run as root")


@pytest.fixture
def make_dovecot(request):
    _need_root()
    servers = []

    def make(**kw):
        dc = pt.Dovecot(**kw)
        servers.append(dc)
        return dc

    yield make
    for dc in servers:
        if _failed(request):
            print(f"--- Dovecot log {dc.log_path} (tail)\n{dc.log_tail(60)}")
        dc.stop()


@pytest.fixture
def dovecot(make_dovecot):
    return make_dovecot(users={"alice": "secret", "bob": "secret"})


@pytest.fixture
def popsift():
    p = pt.popsift_path()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"popsift binary not found at {p}: run make (or set POPSIFT)")
    return p


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


@pytest.fixture
def config(request, tmp):
    def write(user="alice", *, server=None, path=None, mode=0o600, name="test", **keys):
        dc = server if server is not None else request.getfixturevalue("dovecot")
        keys.setdefault("deliver", f"mbox {tmp / 'inbox.mbox'}")
        keys.setdefault("state", tmp / "state.db")
        text = pt.account_config(dc, user, name=name, **keys)
        return pt.write_config(path or tmp / "config", text, mode)
    return write


@pytest.fixture
def run(popsift):
    def run_(*args, **kw):
        return pt.run_popsift(args, binary=popsift, **kw)
    return run_


@pytest.fixture
def fake():
    """fake(messages, uidls=..., **faults) -> a started FakePop, stopped after
    the test; fails the test if the fake server itself hit an exception."""
    servers = []

    def make(messages, uidls="auto", **faults):
        if uidls == "auto":
            uidls = [f"uid-{i}" for i in range(1, len(messages) + 1)]
        srv = FakePop(messages, uidls, **faults).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()
    for srv in servers:
        assert not srv.errors, f"fakepop raised: {srv.errors}"
