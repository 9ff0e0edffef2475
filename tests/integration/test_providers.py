"""provider NAME: presets for common services (host, port, tls; the smtp
half with smtp_user), explicit keys win whatever the order, unknown names
are a file:line configuration error; `popsift providers` lists them."""

import re

import pytest

import popsift_test as pt

# The published settings (each provider's help pages), written out here
# independently of src/provider.c: (pop host, port, tls, smtp host, port, tls)
EXPECTED = {
    "gmail": ("pop.gmail.com", 995, "on", "smtp.gmail.com", 465, "on"),
    "outlook": ("outlook.office365.com", 995, "on", "smtp-mail.outlook.com", 587, "starttls"),
    "office365": ("outlook.office365.com", 995, "on", "smtp.office365.com", 587, "starttls"),
    "yahoo": ("pop.mail.yahoo.com", 995, "on", "smtp.mail.yahoo.com", 465, "on"),
    "163": ("pop.163.com", 995, "on", "smtp.163.com", 465, "on"),
    "126": ("pop.126.com", 995, "on", "smtp.126.com", 465, "on"),
    "yeah": ("pop.yeah.net", 995, "on", "smtp.yeah.net", 465, "on"),
    "qq": ("pop.qq.com", 995, "on", "smtp.qq.com", 465, "on"),
    "sina": ("pop.sina.com", 995, "on", "smtp.sina.com", 465, "on"),
    "sohu": ("pop3.sohu.com", 995, "on", "smtp.sohu.com", 465, "on"),
    "aliyun": ("pop3.aliyun.com", 995, "on", "smtp.aliyun.com", 465, "on"),
}

LINE = re.compile(r"^account (\S+): (\S+):(\d+) tls ([a-z]+); smtp (\S+):(\d+) tls ([a-z]+)(; provider (\S+))?",
                  re.M)


def check_v(run, tmp, text, name="cfg"):
    cfg = pt.write_config(tmp / name, text)
    r = run("-f", cfg, "-v", "check")
    accts = {}
    for m in LINE.finditer(r.stdout):
        accts[m[1]] = (m[2], int(m[3]), m[4], m[5], int(m[6]), m[7], m[9])
    return r, accts


def account(name, *lines):
    return f"account {name}\n" + "".join(f"{ln}\n" for ln in lines)


HEAD = "defaults\ndeliver mbox /tmp/popsift-provider-test.mbox\n\n"


@pytest.mark.parametrize("prov", sorted(EXPECTED))
def test_preset_fills_pop_and_smtp(run, tmp, prov):
    r, accts = check_v(run, tmp, HEAD + account("a", f"provider {prov}", "user me",
                                                "smtp_user me"))
    assert r.returncode == 0, r.stderr
    assert accts["a"] == EXPECTED[prov] + (prov,)


def test_domain_names_and_case(run, tmp):
    r, accts = check_v(run, tmp, HEAD + account("a", "provider yeah.net", "user me") +
                       account("b", "provider QQ.com", "user me"))
    assert r.returncode == 0, r.stderr
    assert accts["a"][:3] == ("pop.yeah.net", 995, "on") and accts["a"][6] == "yeah"
    assert accts["b"][:3] == ("pop.qq.com", 995, "on")


def test_smtp_half_needs_smtp_user(run, tmp):
    """Without smtp_user, forward keeps going to the local MTA."""
    r, accts = check_v(run, tmp, HEAD + account("a", "provider gmail", "user me"))
    assert r.returncode == 0, r.stderr
    assert accts["a"][:6] == ("pop.gmail.com", 995, "on", "localhost", 25, "off")


def test_explicit_keys_win_in_any_order(run, tmp):
    text = HEAD + account("before", "host pop.corp.example", "port 1995", "smtp_host relay.example",
                          "smtp_user me", "provider qq", "user me") \
        + account("after", "provider qq", "user me", "smtp_user me", "host pop.corp.example",
                  "port 1995", "smtp_port 2525", "smtp_tls starttls")
    r, accts = check_v(run, tmp, text)
    assert r.returncode == 0, r.stderr
    assert accts["before"][:6] == ("pop.corp.example", 1995, "on", "relay.example", 465, "on")
    assert accts["after"][:6] == ("pop.corp.example", 1995, "on", "smtp.qq.com", 2525, "starttls")


def test_explicit_tls_takes_its_port(run, tmp):
    r, accts = check_v(run, tmp, HEAD + account("a", "provider 163", "tls starttls", "user me",
                                                "smtp_user me", "smtp_tls starttls"))
    assert r.returncode == 0, r.stderr
    assert accts["a"][:6] == ("pop.163.com", 110, "starttls", "smtp.163.com", 587, "starttls")


def test_defaults_provider_and_defaults_override(run, tmp):
    text = ("defaults\nprovider sina\nport 1110\ntls starttls\n"
            "deliver mbox /tmp/popsift-provider-test.mbox\n\n"
            + account("a", "user me") + account("b", "user you", "provider sohu"))
    r, accts = check_v(run, tmp, text)
    assert r.returncode == 0, r.stderr
    assert accts["a"][:3] == ("pop.sina.com", 1110, "starttls")
    assert accts["b"][:3] == ("pop3.sohu.com", 1110, "starttls")


def test_icloud_has_no_pop3(run, tmp):
    cfg = pt.write_config(tmp / "cfg", HEAD + account("a", "provider icloud", "user me"))
    r = run("-f", cfg, "check")
    assert r.returncode == 78
    assert f"{cfg}:4: account \"a\": provider icloud has no POP3 server" in r.stderr
    r, accts = check_v(run, tmp, HEAD + account("a", "provider icloud", "host pop.example.org",
                                                "user me", "smtp_user me"), "cfg2")
    assert r.returncode == 0, r.stderr
    assert accts["a"][:6] == ("pop.example.org", 995, "on", "smtp.mail.me.com", 587, "starttls")


def test_unknown_provider_is_a_config_error(run, tmp):
    cfg = pt.write_config(tmp / "cfg", HEAD + account("a", "user me", "provider hotmale"))
    r = run("-f", cfg, "check")
    assert r.returncode == 78
    assert f'{cfg}:6: unknown provider "hotmale" (popsift providers lists them)' in r.stderr
    r = run("-f", cfg, "run")
    assert r.returncode == 78


def test_providers_command(run):
    r = run("providers")
    assert r.returncode == 0, r.stderr
    for prov, (host, port, tls, shost, sport, stls) in EXPECTED.items():
        assert re.search(rf"^{re.escape(prov)}\s+{re.escape(host)}:{port} tls {tls}\s+"
                         rf"{re.escape(shost)}:{sport} tls {stls}", r.stdout, re.M), prov
    assert re.search(r"^icloud\s+\(no POP3\)\s+smtp\.mail\.me\.com:587 tls starttls", r.stdout, re.M)
    assert "OAuth2 required" in r.stdout and "app password" in r.stdout
    assert "授权码" in r.stdout
    r = run("providers", "gmail")
    assert r.returncode == 0 and r.stdout.startswith("gmail ") and "Forwarding and POP/IMAP" in r.stdout
    r = run("providers", "nosuch")
    assert r.returncode == 64 and 'unknown provider "nosuch"' in r.stderr


def test_preset_with_overrides_fetches(dovecot, config, run, tmp):
    """A preset whose host and port are overridden really connects there."""
    dovecot.add_message("alice", b"From: a@example.org\nSubject: hi\n\nbody\n")
    cfg = config(provider="gmail", tls=None, port=dovecot.port_ssl)   # host, port given
    assert "tls " not in cfg.read_text() and "provider gmail" in cfg.read_text()
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert len(pt.mbox_messages(tmp / "inbox.mbox")) == 1
