"""OAuth2 built in: `popsift authorize` (PKCE over a loopback redirect, the
device flow with authorization_pending and slow_down) against the scripted
authorization server tests/lib/oauthd.py, then `popsift run` logging into a
real Dovecot (oauth2 passdb, introspection) with XOAUTH2 and OAUTHBEARER;
refresh before expiry and after a refused login; a revoked refresh token
exits 77; tokens stay out of stderr (-vv), `status --json` and group/world
readable files."""

import base64
import os
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import popsift_test as pt
from oauthd import OAuthServer



def assert_no_secret(text: str, srv: OAuthServer, user: str = "alice") -> None:
    """No token, raw or as the XOAUTH2 blob a trace could show."""
    for tok in srv.all_secrets():
        assert tok not in text
        blob = base64.b64encode(f"user={user}\x01auth=Bearer {tok}\x01\x01".encode()).decode()
        assert blob[:40] not in text


def mkmsg(tag: str) -> bytes:
    return (f"From: sender@example.com\r\nTo: alice@example.org\r\n"
            f"Subject: {tag}\r\nMessage-ID: <{tag}@oauth.test>\r\n\r\nHello {tag}.\r\n").encode()


@pytest.fixture
def oauthd():
    srv = OAuthServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def odovecot(make_dovecot, oauthd):
    return make_dovecot(users={"alice": "secret"},
                        oauth2_introspect=oauthd.url("/introspect"))


def oconfig(config, srv, dc, tmp, flow="pkce", auth="xoauth2", **keys):
    keys.update(password=None, auth=auth, server=dc, oauth_client_id=srv.client_id,
                oauth_token_url=srv.url("/token"))
    if flow == "pkce":
        keys["oauth_auth_url"] = srv.url("/authorize")
    else:
        keys["oauth_device_url"] = srv.url("/device")
    return config(**keys)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def play_browser(url: str) -> str:
    """GET the authorization URL, follow its redirect to popsift's loopback
    listener as a browser would; the page popsift answered with."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(url, timeout=30)
        raise AssertionError("the authorization server did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 302, e.read()
        loc = e.headers["Location"]
    assert loc.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(loc, timeout=30) as r:
        return r.read().decode()


def start_authorize(popsift, cfg, env=None):
    full = dict(os.environ, POPSIFT_AUTHORIZE_TIMEOUT="60", **(env or {}))
    return subprocess.Popen([str(popsift), "-f", str(cfg), "authorize", "test"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)


def authorize_pkce(popsift, cfg):
    p = start_authorize(popsift, cfg)
    seen = []
    url = None
    for line in p.stdout:
        seen.append(line)
        if "code_challenge=" in line:
            url = line.strip()
            break
    assert url, "".join(seen) + p.stderr.read()
    page = play_browser(url)
    out, err = p.communicate(timeout=60)
    return p.returncode, "".join(seen) + out, err, page


def token_file(tmp, side="pop3"):
    return tmp / "oauth" / f"test.{side}"


def test_pkce_authorize_then_pop3_xoauth2(popsift, run, config, oauthd, odovecot, tmp):
    cfg = oconfig(config, oauthd, odovecot, tmp)
    rc, out, err, page = authorize_pkce(popsift, cfg)
    assert rc == 0, out + err
    assert "authorized" in page
    assert "stored the pop3 OAuth2 tokens" in out
    assert oauthd.calls == {"authorization_code": 1}, oauthd.errors
    f = token_file(tmp)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700
    assert_no_secret(out + err, oauthd)
    odovecot.add_messages("alice", [mkmsg("one"), mkmsg("two")])
    r = run("-f", cfg, "-vv", "run")
    assert r.returncode == 0, r.stderr
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 2
    assert odovecot.count("alice") == 0
    assert "refresh_token" not in oauthd.calls      # the token was fresh
    assert oauthd.introspected, "Dovecot never asked about the token"
    assert "AUTH XOAUTH2" in r.stderr           # the trace is there, masked
    assert_no_secret(r.stderr + r.stdout, oauthd)
    s = run("-f", cfg, "status", "--json")
    assert s.returncode == 0, s.stderr
    assert_no_secret(s.stdout + s.stderr, oauthd)


def test_check_v_says_whether_authorized(popsift, run, config, oauthd, odovecot, tmp):
    """`check -v` names the OAuth2 sides and whether `popsift authorize`
    was run, never a token."""
    cfg = oconfig(config, oauthd, odovecot, tmp)
    r = run("-f", cfg, "-v", "check")
    assert r.returncode == 0, r.stderr
    assert "pop3 login: OAuth2" in r.stdout
    assert "not authorized yet: run popsift authorize" in r.stdout
    rc, out, err, _ = authorize_pkce(popsift, cfg)
    assert rc == 0, out + err
    r = run("-f", cfg, "-v", "check")
    assert r.returncode == 0, r.stderr
    assert "pop3 login: OAuth2" in r.stdout and "not authorized" not in r.stdout
    assert_no_secret(r.stdout + r.stderr, oauthd)


@pytest.mark.parametrize("sasl_ir", ["no", "yes"])
def test_xoauth2_two_steps_or_one(popsift, run, config, oauthd, odovecot, tmp, sasl_ir):
    """Microsoft's POP3 wants XOAUTH2 in two steps (AUTH, then the blob
    after "+"): the default, as the outlook/office365 presets say;
    sasl_ir yes sends it with AUTH."""
    cfg = oconfig(config, oauthd, odovecot, tmp, sasl_ir=sasl_ir)
    assert authorize_pkce(popsift, cfg)[0] == 0
    odovecot.add_message("alice", mkmsg("ir"))
    r = run("-f", cfg, "-vv", "run")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    i = next(n for n, ln in enumerate(lines) if "C: AUTH XOAUTH2" in ln)
    two_steps = lines[i + 1].rstrip().endswith("S: +")
    assert two_steps == (sasl_ir == "no"), "\n".join(lines[i - 2:i + 4])
    assert_no_secret(r.stderr, oauthd)


def test_wrong_state_is_ignored(popsift, config, oauthd, odovecot, tmp):
    """A request to the loopback listener without the right state (another
    local process) does not end the wait nor plant a code."""
    cfg = oconfig(config, oauthd, odovecot, tmp)
    p = start_authorize(popsift, cfg)
    url = next(line.strip() for line in p.stdout if "code_challenge=" in line)
    redirect = next(line.split()[-1] for line in p.stdout if "Waiting up to" in line)
    try:
        urllib.request.urlopen(redirect + "?code=evil&state=wrong", timeout=30)
        raise AssertionError("wrong state accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400
    play_browser(url)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, out + err
    assert oauthd.calls == {"authorization_code": 1}, oauthd.errors


def test_device_flow_pending_slow_down(popsift, run, config, oauthd, odovecot, tmp):
    cfg = oconfig(config, oauthd, odovecot, tmp, flow="device", auth="oauthbearer")
    t0 = time.monotonic()
    r = run("-f", cfg, "authorize", "test", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WDJB-MJHT" in r.stdout and oauthd.url("/activate") in r.stdout
    assert oauthd.calls == {"urn:ietf:params:oauth:grant-type:device_code": 3}
    polls = oauthd.polls
    assert polls[1] - polls[0] >= 0.9              # interval 1 s
    assert polls[2] - polls[1] >= 5.9              # slow_down: +5 s
    assert time.monotonic() - t0 < 60
    odovecot.add_message("alice", mkmsg("dev"))
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1


def test_refresh_before_expiry(popsift, run, config, odovecot, make_dovecot, tmp):
    srv = OAuthServer(access_ttl=30).start()      # within popsift's 60 s margin
    try:
        dc = make_dovecot(users={"alice": "secret"}, oauth2_introspect=srv.url("/introspect"))
        cfg = oconfig(config, srv, dc, tmp)
        assert authorize_pkce(popsift, cfg)[0] == 0
        for i in range(2):
            dc.add_message("alice", mkmsg(f"m{i}"))
            r = run("-f", cfg, "run")
            assert r.returncode == 0, r.stderr
            assert srv.calls.get("refresh_token") == i + 1
        assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 2
    finally:
        srv.stop()


def test_refused_token_is_refreshed_once(popsift, run, config, oauthd, odovecot, tmp):
    """The server refuses a token popsift believes fresh (revoked access
    token, clock skew): one refresh, one more login."""
    cfg = oconfig(config, oauthd, odovecot, tmp)
    assert authorize_pkce(popsift, cfg)[0] == 0
    oauthd.expire_access()
    odovecot.add_message("alice", mkmsg("again"))
    r = run("-f", cfg, "-v", "run")
    assert r.returncode == 0, r.stderr
    assert oauthd.calls.get("refresh_token") == 1
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1


def test_revoked_refresh_token_exits_77(popsift, run, config, oauthd, odovecot, tmp):
    cfg = oconfig(config, oauthd, odovecot, tmp)
    assert authorize_pkce(popsift, cfg)[0] == 0
    oauthd.expire_access()
    oauthd.revoke()
    odovecot.add_message("alice", mkmsg("kept"))
    r = run("-f", cfg, "-vv", "run")
    assert r.returncode == 77, r.stderr
    assert ("test: the OAuth2 authorization was revoked or expired: run popsift "
            "authorize test") in r.stderr
    assert odovecot.count("alice") == 1
    assert_no_secret(r.stderr, oauthd)


def test_no_authorization_yet_exits_77(run, config, oauthd, odovecot, tmp):
    cfg = oconfig(config, oauthd, odovecot, tmp)
    r = run("-f", cfg, "run")
    assert r.returncode == 77, r.stderr
    assert "run popsift authorize test" in r.stderr


def test_token_file_refused_if_readable_by_others(popsift, run, config, oauthd, odovecot, tmp):
    cfg = oconfig(config, oauthd, odovecot, tmp)
    assert authorize_pkce(popsift, cfg)[0] == 0
    os.chmod(token_file(tmp), 0o640)
    r = run("-f", cfg, "run")
    assert r.returncode == 77, r.stderr
    assert "readable by others" in r.stderr


def test_password_command_still_wins(run, config, oauthd, odovecot, tmp):
    """A token helper script (password_command) keeps working next to
    oauth_* keys: no token file is needed, none is written."""
    oauthd.access["helper-token"] = time.time() + 3600
    cfg = oconfig(config, oauthd, odovecot, tmp, password_command="echo helper-token")
    odovecot.add_message("alice", mkmsg("helper"))
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert not token_file(tmp).exists()
    assert oauthd.calls == {}


# ---------------------------------------------------------------- SMTP submission

@pytest.fixture
def recorder(oauthd):
    from smtpd import Recorder
    live = oauthd.live_tokens
    srv = Recorder(users={}, tokens=lambda user, tok: user == "fwd@example.org" and tok in live())
    srv.start()
    yield srv
    srv.stop()


def smtp_oauth_config(config, oauthd, recorder):
    return config(smtp_host="127.0.0.1", smtp_port=recorder.port, received_header="no",
                  deliver="forward bob@example.org", smtp_user="fwd@example.org",
                  smtp_auth="xoauth2", smtp_oauth_client_id=oauthd.client_id,
                  smtp_oauth_token_url=oauthd.url("/token"),
                  smtp_oauth_auth_url=oauthd.url("/authorize"))


def test_smtp_xoauth2_refreshed_after_refusal(popsift, run, config, oauthd, dovecot, recorder,
                                              tmp):
    """Forwarding logs into SMTP with the stored token; a refused token is
    refreshed once and the message goes out."""
    cfg = smtp_oauth_config(config, oauthd, recorder)
    rc, out, err, _ = authorize_pkce(popsift, cfg)
    assert rc == 0, out + err
    assert "stored the smtp OAuth2 tokens" in out and "pop3" not in out
    dovecot.add_message("alice", mkmsg("fwd1"))
    r = run("-f", cfg, "-vv", "run")
    assert r.returncode == 0, r.stderr
    assert len(recorder.messages) == 1
    oauthd.expire_access()
    dovecot.add_message("alice", mkmsg("fwd2"))
    r = run("-f", cfg, "-vv", "run")
    assert r.returncode == 0, r.stderr
    assert len(recorder.messages) == 2
    assert oauthd.calls.get("refresh_token") == 1
    assert "AUTH XOAUTH2" in r.stderr
    assert_no_secret(r.stderr, oauthd, "fwd@example.org")


def test_smtp_revoked_exits_77(popsift, run, config, oauthd, dovecot, recorder, tmp):
    cfg = smtp_oauth_config(config, oauthd, recorder)
    assert authorize_pkce(popsift, cfg)[0] == 0
    oauthd.expire_access()
    oauthd.revoke()
    dovecot.add_message("alice", mkmsg("stays"))
    r = run("-f", cfg, "run")
    assert r.returncode == 77, r.stderr
    assert "the OAuth2 authorization was revoked or expired: run popsift authorize test" \
        in r.stderr
    assert dovecot.count("alice") == 1 and recorder.messages == []


# ---------------------------------------------------------------- the daemon

def test_daemon_pauses_revoked_account_until_authorized(popsift, run, config, oauthd, odovecot,
                                                        tmp):
    """A revoked grant is a refused login to the daemon: paused after three
    in a row; `popsift authorize` and SIGHUP resume it."""
    from test_daemon import Daemon
    cfg = oconfig(config, oauthd, odovecot, tmp, interval=1, max_backoff=1)
    assert authorize_pkce(popsift, cfg)[0] == 0
    oauthd.expire_access()
    oauthd.revoke()
    d = Daemon(popsift, cfg)
    try:
        d.wait_for(r"^test: paused after 3 refused logins")
        assert d.count(r"^test: .*revoked or expired: run popsift authorize test") == 3, d.text()
        assert oauthd.calls.get("refresh_token") == 3
        odovecot.add_message("alice", mkmsg("after"))
        assert authorize_pkce(popsift, cfg)[0] == 0
        d.send(signal.SIGHUP)
        d.wait_for(r"^test: login settings changed: polling again")
        d.wait_until(lambda: (tmp / "inbox.mbox").exists() and
                     len(pt.mbox_messages(tmp / "inbox.mbox")) == 1, what="the delivery")
        assert d.stop()[0] == 0
    finally:
        d.kill()
