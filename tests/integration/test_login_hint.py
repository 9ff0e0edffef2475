"""A refused login (issue 17) says where the account is configured
(file:line) and what to check: the key holding the secret, and what the
provider wants instead of the web password (app password, authorization
code, OAuth2)."""

import pytest


def account_line(cfg, name="test"):
    lines = cfg.read_text().splitlines()
    return lines.index(f"account {name}") + 1


@pytest.mark.parametrize("auth", ["any", "user", "plain"])
def test_refused_login_names_file_line_and_what_to_check(dovecot, config, run, auth):
    cfg = config(password="wrong", auth=auth)
    r = run("-f", cfg, "run")
    assert r.returncode == 77, r.stderr
    assert f"account test ({cfg}:{account_line(cfg)}): check user and password;" in r.stderr
    assert "app password" in r.stderr and "authorization code" in r.stderr
    assert "OAuth2" in r.stderr and "popsift providers" in r.stderr


def test_password_command_is_named(dovecot, config, run):
    cfg = config(password=None, password_command="/bin/echo wrong")
    r = run("-f", cfg, "run")
    assert r.returncode == 77, r.stderr
    assert "check user and what password_command prints" in r.stderr


def test_provider_says_what_it_wants(dovecot, config, run):
    """An account on a provider's preset (its servers overridden here to
    reach the test server) gets that provider's own advice."""
    cfg = config(password="wrong", provider="qq")
    r = run("-f", cfg, "run")
    assert r.returncode == 77, r.stderr
    assert "qq wants: authorization code" in r.stderr, r.stderr


def test_new_gives_the_same_hint(dovecot, config, run):
    cfg = config(password="wrong", auth="user")
    r = run("-f", cfg, "new")
    assert r.returncode == 77, r.stderr
    assert f"account test ({cfg}:{account_line(cfg)})" in r.stderr


def test_smtp_refused_login_gets_the_hint_too(dovecot, config, run):
    from smtpd import Recorder
    srv = Recorder(users={"fwd": "right"}).start()
    try:
        dovecot.add_message("alice", b"From: a@b\nSubject: s\n\nbody\n")
        cfg = config(smtp_host="127.0.0.1", smtp_port=srv.port, smtp_user="fwd",
                     smtp_password="wrong", deliver="forward bob@example.org")
        r = run("-f", cfg, "run")
        assert r.returncode == 77, r.stderr
        assert f"account test ({cfg}:{account_line(cfg)}): check smtp_user and smtp_password;" \
            in r.stderr, r.stderr
        assert dovecot.count("alice") == 1
    finally:
        srv.stop()
