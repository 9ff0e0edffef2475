"""tls_fingerprint alone trusts a self-signed server (issue 17), as with
mpop and fetchmail: with a pin and no tls_ca_file, popsift does not ask
for a CA, but the pin is still checked (libcurl checks
CURLOPT_PINNEDPUBLICKEY with VERIFYPEER off: a pin that does not match
fails, exit 69, before any credential is sent).  A fingerprint in
another form (mpop's hex SHA-256 of the certificate) is a configuration
error that says which form is expected."""

import uuid

import pytest

import popsift_test as pt

OTHER_PIN = "sha256//" + "A" * 43 + "="   # the form is right, the key is not


def mkmsg(tag):
    return (f"From: s@example.com\nSubject: {tag}\nMessage-ID: <{uuid.uuid4().hex}@t>\n\n"
            f"body {tag}\n").encode()


def logins(dc):
    return [ln for ln in dc.log().splitlines() if "Login: user=<" in ln]


@pytest.mark.parametrize("tls", ["on", "starttls"])
def test_pin_alone_trusts_a_self_signed_server(dovecot, config, run, tmp, tls):
    dovecot.add_message("alice", mkmsg("pinned"))
    r = run("-f", config(tls=tls, tls_ca_file=None, tls_fingerprint=dovecot.pin), "run")
    assert r.returncode == 0, r.stderr
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1
    assert dovecot.count("alice") == 0


@pytest.mark.parametrize("tls", ["on", "starttls"])
def test_wrong_pin_alone_still_fails(dovecot, config, run, tmp, tls):
    dovecot.add_message("alice", mkmsg("wrongpin"))
    r = run("-f", config(tls=tls, tls_ca_file=None, tls_fingerprint=OTHER_PIN), "run")
    assert r.returncode == 69, r.stderr
    assert "not the one tls_fingerprint names" in r.stderr, r.stderr
    assert not (tmp / "inbox.mbox").exists()
    assert dovecot.count("alice") == 1
    assert logins(dovecot) == [], "no credentials before the pin is checked"


def test_wrong_pin_with_ca_fails_too(dovecot, config, run, tmp):
    r = run("-f", config(tls_fingerprint=OTHER_PIN), "run")
    assert r.returncode == 69, r.stderr


def test_no_ca_no_pin_says_how_to_trust(dovecot, config, run):
    dovecot.add_message("alice", mkmsg("noca"))
    r = run("-f", config(tls_ca_file=None), "run")
    assert r.returncode == 69, r.stderr
    assert "tls_fingerprint sha256//BASE64 pins its key" in r.stderr, r.stderr
    assert "tls_ca_file" in r.stderr


@pytest.mark.parametrize("value", [
    "AB:CD:" + ":".join(["12"] * 30),          # mpop: SHA-256 of the certificate
    "ab" * 32,                                 # hex without colons
    "sha256//tooshort=",
    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
])
def test_other_fingerprint_forms_are_refused_with_the_form_expected(config, run, dovecot,
                                                                    value):
    r = run("-f", config(tls_ca_file=None, tls_fingerprint=value), "check")
    assert r.returncode == 78, r.stderr
    assert "is not sha256//BASE64, the SHA-256 of the server's public key" in r.stderr
    assert "mpop's and fetchmail's hex fingerprints" in r.stderr
