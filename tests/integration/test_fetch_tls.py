"""Integration tests for issue 2: TLS (POP3S, STLS, CA, pinning, no
fallback), every auth method, wrong password, password_command, and the -v
trace that must never show a secret."""

import base64
import hashlib
import hmac
import re
import uuid

import pytest

import popsift_test as pt

PASSWORD = "Pw-9f3kXq7Zr"           # distinctive, so a leak is unambiguous
METHODS = ["any", "user", "apop", "plain", "login", "cram-md5"]
DOVECOT_METHOD = {"user": "PLAIN", "apop": "APOP", "plain": "PLAIN", "login": "LOGIN",
                  "cram-md5": "CRAM-MD5"}


def mkmsg(tag: str) -> bytes:
    return (f"Return-Path: <s@example.com>\nFrom: s@example.com\nTo: alice@example.org\n"
            f"Subject: {tag}\nMessage-ID: <{tag}.{uuid.uuid4().hex}@popsift.test>\n\n"
            f"body of {tag}\n").encode()


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
    return r


def failed(r):
    """A clean failure: non-zero exit, not a crash or a hang."""
    assert 0 < r.returncode < 128, f"exit {r.returncode}\nstderr:\n{r.stderr}"
    return r


def delivered(tmp):
    return pt.mbox_messages(tmp / "inbox.mbox")


def logins(dc):
    return [ln for ln in dc.log().splitlines() if "Login: user=<" in ln]


@pytest.fixture
def server(make_dovecot):
    return make_dovecot(users={"alice": PASSWORD, "bob": "secret"})


# --------------------------------------------------------------------------
# TLS

def test_tls_on_pop3s_with_ca_file(dovecot, config, run, tmp):
    dovecot.add_message("alice", m := mkmsg("pop3s"))
    ok(run("-f", config(tls="on"), "run"))
    assert len(delivered(tmp)) == 1 and pt.strip_header(delivered(tmp)[0], "Received") == m
    assert dovecot.count("alice") == 0
    lg = logins(dovecot)
    assert len(lg) == 1 and ", TLS" in lg[0], lg


def test_tls_starttls_on_plain_port(dovecot, config, run, tmp):
    dovecot.add_message("alice", m := mkmsg("stls"))
    cfg = config(tls="starttls")
    assert f"port {dovecot.port}\n" in cfg.read_text()
    ok(run("-f", cfg, "run"))
    assert [pt.strip_header(x, "Received") for x in delivered(tmp)] == [m]
    assert dovecot.count("alice") == 0
    lg = logins(dovecot)
    assert len(lg) == 1 and ", TLS" in lg[0], lg   # logged in over TLS on the plain port


@pytest.mark.parametrize("tls,port,hint", [
    ("starttls", "ssl", "write tls on"),       # mpop's tls on means STARTTLS
    ("off", "ssl", "write tls on"),
    ("on", "plain", "write tls starttls"),
])
def test_the_wrong_tls_for_the_port_says_which(dovecot, config, run, tmp, tls, port, hint):
    """The commonest slip when moving from mpop or fetchmail: STARTTLS or
    plain text against POP3S (silence, then a timeout), or POP3S against a
    plain port (a failed handshake).  The error says what to write."""
    dovecot.add_message("alice", mkmsg("wrong-port"))
    p = dovecot.port_ssl if port == "ssl" else dovecot.port
    cfg = config(tls=tls, port=p, timeout=2, auth="user")
    for args in (["run"], ["new"]):
        r = failed(run("-f", cfg, *args))
        assert hint in r.stderr, r.stderr
    assert dovecot.count("alice") == 1


@pytest.mark.parametrize("tls", ["on", "starttls"])
def test_self_signed_refused_without_ca_file(dovecot, config, run, tmp, tls):
    dovecot.add_message("alice", mkmsg("noca"))
    r = failed(run("-f", config(tls=tls, tls_ca_file=None), "run"))
    assert re.search(r"tls|ssl|certificate", r.stderr, re.I), r.stderr
    assert r.stderr.startswith("test: "), r.stderr
    assert dovecot.count("alice") == 1
    assert delivered(tmp) == []
    assert logins(dovecot) == []


def test_tls_fingerprint_right(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("pin"))
    ok(run("-f", config(tls_fingerprint=dovecot.pin), "run"))
    assert len(delivered(tmp)) == 1
    assert dovecot.count("alice") == 0


@pytest.mark.parametrize("tls", ["on", "starttls"])
def test_tls_fingerprint_wrong(dovecot, config, run, tmp, tls):
    dovecot.add_message("alice", mkmsg("badpin"))
    wrong = "sha256//" + base64.b64encode(hashlib.sha256(b"not the key").digest()).decode()
    assert wrong != dovecot.pin
    r = failed(run("-f", config(tls=tls, tls_fingerprint=wrong), "run"))
    assert re.search(r"pin|fingerprint|public key|tls|ssl|certificate", r.stderr, re.I), r.stderr
    assert dovecot.count("alice") == 1
    assert delivered(tmp) == []
    assert logins(dovecot) == []


def test_starttls_without_stls_fails_without_fallback(make_dovecot, config, run, tmp):
    dc = make_dovecot(users={"alice": PASSWORD}, ssl=False)
    dc.add_message("alice", mkmsg("nostls"))
    r = failed(run("-f", config(server=dc, tls="starttls"), "-v", "run"))
    assert re.search(r"stls|starttls|tls", r.stderr, re.I), r.stderr
    assert dc.count("alice") == 1
    assert delivered(tmp) == []
    assert logins(dc) == []                       # never logged in in the clear
    for cmd in ("C: USER", "C: PASS", "C: APOP", "C: AUTH"):
        assert cmd not in r.stderr, r.stderr
    assert PASSWORD not in r.stderr


def test_tls_off_explicit_works_on_plain_port(dovecot, config, run, tmp):
    dovecot.add_message("alice", mkmsg("plain"))
    ok(run("-f", config(tls="off"), "run"))
    assert len(delivered(tmp)) == 1
    assert dovecot.count("alice") == 0


# --------------------------------------------------------------------------
# auth

@pytest.mark.parametrize("auth", METHODS)
def test_auth_method_succeeds(server, config, run, tmp, auth):
    msgs = [mkmsg(f"auth-{auth}-{i}") for i in range(2)]
    server.add_messages("alice", msgs)
    r = ok(run("-f", config(server=server, auth=auth), "-v", "run"))
    assert [pt.strip_header(m, "Received") for m in delivered(tmp)] == msgs
    assert server.count("alice") == 0
    lg = logins(server)
    assert len(lg) == 1, lg
    if auth in DOVECOT_METHOD:
        assert f"method={DOVECOT_METHOD[auth]}," in lg[0], lg
    if auth == "user":                                 # popsift sends USER/PASS itself
        assert re.search(r"^test: C: USER alice$", r.stderr, re.M), r.stderr
        assert re.search(r"^test: C: PASS ", r.stderr, re.M), r.stderr


@pytest.mark.parametrize("auth", METHODS)
def test_wrong_password_is_77_and_nothing_deleted(dovecot, config, run, tmp, auth):
    dovecot.add_messages("alice", [mkmsg("wrong1"), mkmsg("wrong2")])
    r = run("-f", config(auth=auth, password="not-the-password"), "run")
    assert r.returncode == 77, f"exit {r.returncode}\n{r.stderr}"
    assert r.stderr.startswith("test: "), r.stderr
    assert dovecot.count("alice") == 2
    assert delivered(tmp) == []


def test_auth_any_refused_method_then_user_pass(dovecot, config, run, tmp):
    """`auth any`: libcurl picks CRAM-MD5 here; refused, popsift tries
    USER/PASS once (servers offer methods some users have no secret for,
    doc/compat.md), and a password refused by both is still 77."""
    dovecot.add_messages("alice", [mkmsg("anyfb")])
    r = run("-f", config(auth="any", password="not-the-password"), "-v", "run")
    assert r.returncode == 77, f"exit {r.returncode}\n{r.stderr}"
    assert re.search(r"^test: .* refused CRAM-MD5: trying USER/PASS", r.stderr, re.M), r.stderr
    assert re.search(r"^test: C: USER alice$", r.stderr, re.M), r.stderr
    assert dovecot.count("alice") == 1 and delivered(tmp) == []


def test_password_command(server, config, run, tmp):
    server.add_message("alice", mkmsg("pwcmd"))
    cfg = config(server=server, password=None, password_command=f"/bin/echo {PASSWORD}")
    assert "password " not in cfg.read_text().replace("password_command", "")
    r = ok(run("-f", cfg, "-v", "run"))
    assert len(delivered(tmp)) == 1
    assert server.count("alice") == 0
    assert PASSWORD not in r.stderr


def test_password_command_first_line_no_shell(server, config, run, tmp):
    # run without a shell: "$HOME", ";" and "|" reach the command verbatim;
    # only the first output line is the secret
    pw = "Pw$HOME;x|y"
    server.add_user("carol", pw)
    server.add_message("carol", mkmsg("pwcmd-noshell"))
    cfg = config("carol", server=server, password=None,
                 password_command=f"/usr/bin/printf '%s\\nsecond-line\\n' {pw}")
    ok(run("-f", cfg, "run"))
    assert server.count("carol") == 0
    assert len(delivered(tmp)) == 1


# --------------------------------------------------------------------------
# the -v trace never shows a secret

def secret_forms(user: str, password: str) -> list[str]:
    b = password.encode()
    u = user.encode()
    raw = [b, base64.b64encode(b),
           base64.b64encode(b"\0" + u + b"\0" + b),
           base64.b64encode(u + b"\0" + u + b"\0" + b)]
    out = [x.decode() for x in raw]
    # the base64 of the PLAIN blob without its padding, and its 16-char prefix
    # past the user name (a truncated blob would still leak)
    out.append(base64.b64encode(b"\0" + u + b"\0" + b).decode().rstrip("="))
    return out


def digests_in_trace(stderr: str, user: str, password: str) -> list[str]:
    """The APOP digest and CRAM-MD5 response that a trace could leak."""
    out = []
    m = re.search(r"S: \+OK .*?(<[^>]+>)", stderr)
    if m:
        out.append(hashlib.md5((m.group(1) + password).encode()).hexdigest())
    for ch in re.findall(r"S: \+ ([A-Za-z0-9+/=]{8,})\s*$", stderr, re.M):
        try:
            challenge = base64.b64decode(ch)
        except Exception:
            continue
        d = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
        out += [d, base64.b64encode(f"{user} {d}".encode()).decode()]
    return out


@pytest.mark.parametrize("verbosity", ["-v", "-vv"])
@pytest.mark.parametrize("auth", METHODS)
def test_verbose_trace_masks_secrets(server, config, run, tmp, auth, verbosity):
    server.add_message("alice", mkmsg(f"trace-{auth}"))
    r = ok(run("-f", config(server=server, auth=auth), verbosity, "run"))
    err = r.stderr
    assert re.search(r"^test: C: \S", err, re.M), err
    assert re.search(r"^test: S: \+OK", err, re.M), err
    assert re.search(r"^test: C: RETR 1$", err, re.M), err
    for s in secret_forms("alice", PASSWORD) + digests_in_trace(err, "alice", PASSWORD):
        assert s not in err, f"secret {s!r} in {verbosity} trace ({auth}):\n{err}"
    assert PASSWORD not in r.stdout


def test_verbose_masks_password_command_output(server, config, run, tmp):
    server.add_message("alice", mkmsg("trace-pwcmd"))
    cfg = config(server=server, auth="user", password=None,
                 password_command=f"/bin/echo {PASSWORD}")
    r = ok(run("-f", cfg, "-vv", "run"))
    for s in secret_forms("alice", PASSWORD):
        assert s not in r.stderr, r.stderr
