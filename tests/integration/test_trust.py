"""Issue 13: other local users must not be able to steer popsift.  A rules
file or config that another user owns or may write is refused (exit 78)
as fetchmail and procmail refuse theirs; the state database and its
directory are created private (0700, 0600 with -wal and -shm) and one that
another user owns or may write is refused."""

import os
import stat

import pytest

import popsift_test as pt


def other_uid():
    return pt.ensure_mail_user()[0]


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def rules_file(tmp, mode_=0o644, owner=None):
    p = tmp / "r.rules"
    p.write_text(f"match all mbox {tmp / 'inbox.mbox'}\n")
    os.chmod(p, mode_)
    if owner is not None:
        os.chown(p, owner, -1)
    return p


@pytest.mark.parametrize("how", ["group-writable", "world-writable", "foreign"])
def test_untrusted_rules_file_is_refused(run, dovecot, config, tmp, how):
    dovecot.add_message("alice", b"Subject: s\n\nbody\n")
    rules = rules_file(tmp, {"group-writable": 0o664, "world-writable": 0o646}.get(how, 0o644),
                       other_uid() if how == "foreign" else None)
    cfg = config(rules=rules)
    for cmd in (["check"], ["run"]):
        r = run("-f", cfg, *cmd)
        assert r.returncode == 78, (cmd, r.stdout, r.stderr)
        assert str(rules) in r.stderr, r.stderr
        want = "owned by another user" if how == "foreign" else f"chmod go-w {rules}"
        assert want in r.stderr, r.stderr
    r = run("filter", "-r", rules, "--dry-run", input="Subject: x\n\nb\n")
    assert r.returncode == 78, r.stderr
    assert dovecot.count("alice") == 1, "nothing was fetched"
    assert not (tmp / "inbox.mbox").exists()

    os.chown(rules, 0, -1)
    os.chmod(rules, 0o644)
    assert run("-f", cfg, "run").returncode == 0
    assert dovecot.count("alice") == 0


@pytest.mark.parametrize("how", ["group-writable", "world-writable", "foreign"])
def test_untrusted_config_without_password_is_refused(run, dovecot, config, tmp, how):
    cfg = config(password=None, password_command=f"/bin/echo {dovecot.users['alice']}",
                 mode={"group-writable": 0o664, "world-writable": 0o646}.get(how, 0o644))
    if how == "foreign":
        os.chown(cfg, other_uid(), -1)
    r = run("-f", cfg, "check")
    assert r.returncode == 78, r.stderr
    assert str(cfg) in r.stderr, r.stderr
    r = run("-f", cfg, "run")
    assert r.returncode == 78, r.stderr


def test_readable_config_with_password_still_refused(run, config):
    cfg = config(mode=0o640)
    r = run("-f", cfg, "check")
    assert r.returncode == 78 and "readable by others" in r.stderr, r.stderr


def test_fresh_state_is_private(run, dovecot, config, tmp):
    dovecot.add_message("alice", b"Subject: s\n\nbody\n")
    state = tmp / "deep" / "state" / "state.db"
    cfg = config(state=state, keep=True)
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert mode(state.parent) == 0o700 and mode(state.parent.parent) == 0o700
    files = [state, state.with_name("state.db-wal"), state.with_name("state.db-shm"),
             state.with_name("state.db.lock")]
    assert all(p.exists() for p in files[:2]), list(state.parent.iterdir())
    for p in files:
        if p.exists():
            assert mode(p) == 0o600, (p, oct(mode(p)))


def test_state_made_private_when_readable(run, dovecot, config, tmp):
    state = tmp / "state.db"
    cfg = config(state=state, keep=True)
    assert run("-f", cfg, "run").returncode == 0
    os.chmod(state, 0o644)
    r = run("-f", cfg, "status")
    assert r.returncode == 0, r.stderr
    assert mode(state) == 0o600
    for p in state.parent.glob("state.db-*"):
        assert mode(p) == 0o600, p


@pytest.mark.parametrize("how", ["foreign-0666", "foreign-0644", "own-0666", "wal-0666"])
def test_planted_state_database_is_refused(run, dovecot, config, tmp, how):
    dovecot.add_message("alice", b"Subject: s\n\nbody\n")
    state = tmp / "state.db"
    cfg = config(state=state)
    planted = state.with_name("state.db-wal") if how == "wal-0666" else state
    planted.write_bytes(b"")
    os.chmod(planted, 0o666 if how.endswith("0666") else 0o644)
    if how.startswith("foreign"):
        os.chown(planted, other_uid(), -1)
    for cmd in (["run"], ["status"], ["log"], ["check"], ["daemon"]):
        r = run("-f", cfg, *cmd, timeout=60)
        assert r.returncode == 78, (cmd, r.stderr)
        assert str(planted) in r.stderr, r.stderr
        assert ("owned by another user" if how.startswith("foreign") else "writable by others") \
            in r.stderr, r.stderr
    assert dovecot.count("alice") == 1
    assert planted.stat().st_size == 0, "popsift wrote into the planted file"


def test_shared_state_directory_is_refused(run, dovecot, config, tmp):
    d = tmp / "shared"
    d.mkdir()
    os.chmod(d, 0o1777)
    cfg = config(state=d / "state.db")
    r = run("-f", cfg, "run")
    assert r.returncode == 78, r.stderr
    assert f"state directory {d} is writable by others" in r.stderr, r.stderr
    assert list(d.iterdir()) == [], "nothing may be created there"
    os.chmod(d, 0o755)
    os.chown(d, other_uid(), -1)
    r = run("-f", cfg, "run")
    assert r.returncode == 78 and "owned by another user" in r.stderr, r.stderr


def test_log_file_link_is_not_followed(run, dovecot, config, tmp):
    """A link planted at the log file's path (a shared log directory) does
    not make popsift append to the file it points at."""
    dovecot.add_message("alice", b"Subject: s\n\nbody\n")
    victim = tmp / "victim"
    victim.write_bytes(b"precious\n")
    (tmp / "popsift.log").symlink_to(victim)
    cfg = config(log=tmp / "popsift.log")
    r = run("-f", cfg, "run")
    assert r.returncode != 0, r.stderr
    assert "popsift.log" in r.stderr, r.stderr
    assert victim.read_bytes() == b"precious\n"
    assert dovecot.count("alice") == 1, "nothing was fetched"
