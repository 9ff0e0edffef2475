"""Tests of the test infrastructure itself: the Dovecot fixture, the mail
generator and the mbox/Maildir readers.  They do not need ./popsift."""

import base64
import hashlib
import hmac
import os
import poplib
import socket
import ssl
import stat
import time

import pytest

import popsift_test as pt

gen = pt.load_genmail()


def pop_lines_to_bytes(lines):
    """poplib's RETR lines (dot-unstuffed, CRLF stripped) -> LF message."""
    return b"".join(line + b"\n" for line in lines)


def login_plain(dc, user="alice", password="secret"):
    p = poplib.POP3(dc.host, dc.port, timeout=10)
    p.user(user)
    p.pass_(password)
    return p


def test_dovecot_starts(dovecot):
    for port in (dovecot.port, dovecot.port_ssl):
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    assert dovecot.port != dovecot.port_ssl
    # Dovecot's log process writes the line on its own time: wait for it
    deadline = time.monotonic() + 30
    while "starting up" not in dovecot.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "starting up" in dovecot.log()
    assert dovecot.count("alice") == 0 and dovecot.count("bob") == 0
    st = os.stat(dovecot.maildir("alice"))
    assert (st.st_uid, st.st_gid) == (dovecot.mail_uid, dovecot.mail_gid)


def test_capabilities(dovecot):
    p = poplib.POP3(dovecot.host, dovecot.port, timeout=10)
    try:
        greeting = p.getwelcome()
        assert b"<" in greeting and b">" in greeting  # APOP timestamp
        capa = p.capa()
        for c in ("PIPELINING", "UIDL", "TOP", "STLS", "USER"):
            assert c in capa, capa
        assert set(capa["SASL"]) >= {"PLAIN", "LOGIN", "CRAM-MD5"}
    finally:
        p.quit()


def test_plain_stat_uidl_retr_dele(dovecot):
    msgs = gen.generate(8, seed=11)          # one of each kind, LF line ends
    dovecot.add_messages("alice", msgs)
    assert dovecot.count("alice") == 8
    p = login_plain(dovecot)
    count, size = p.stat()
    assert count == 8
    # LIST sizes are the CRLF sizes
    crlf = [len(m) + m.count(b"\n") for m in msgs]
    assert size == sum(crlf)
    _, listing, _ = p.list()
    assert [int(x.split()[1]) for x in listing] == crlf
    _, uidls, _ = p.uidl()
    uids = [x.split()[1] for x in uidls]
    assert len(set(uids)) == 8 and all(len(u) == 16 for u in uids)
    for n, m in enumerate(msgs, 1):       # order on the server = order added
        _, lines, _ = p.retr(n)
        assert pop_lines_to_bytes(lines) == m
    # the dot-stuffing message really went through stuffed lines
    assert b"." in msgs[1].split(b"\n") and b".." in msgs[1].split(b"\n")
    p.dele(1)
    p.dele(2)
    p.quit()
    assert dovecot.count("alice") == 6
    assert dovecot.messages("alice") == msgs[2:]
    # bob is untouched and UIDLs are stable across sessions
    p = login_plain(dovecot)
    _, uidls2, _ = p.uidl()
    assert [x.split()[1] for x in uidls2] == uids[2:]
    p.quit()
    assert dovecot.count("bob") == 0


def test_order_kept_for_many(dovecot):
    msgs = gen.generate(120, seed=5)
    dovecot.add_messages("bob", msgs)
    p = login_plain(dovecot, "bob")
    assert p.stat()[0] == 120
    for n in (1, 2, 37, 64, 119, 120):
        _, lines, _ = p.retr(n)
        assert pop_lines_to_bytes(lines) == msgs[n - 1], n
    p.quit()


def test_pop3s_with_ca(dovecot):
    dovecot.add_message("alice", gen.message(0))
    ctx = ssl.create_default_context(cafile=str(dovecot.cafile))
    for host in ("127.0.0.1", "localhost"):
        try:
            p = poplib.POP3_SSL(host, dovecot.port_ssl, context=ctx, timeout=10)
        except OSError:
            if host == "localhost":   # localhost may resolve to ::1 only
                continue
            raise
        p.user("alice")
        p.pass_("secret")
        assert p.stat()[0] == 1
        _, lines, _ = p.retr(1)
        assert pop_lines_to_bytes(lines) == gen.message(0)
        p.quit()


def test_pop3s_untrusted_without_ca(dovecot):
    ctx = ssl.create_default_context()   # system CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL("127.0.0.1", dovecot.port_ssl, context=ctx, timeout=10)


def test_stls(dovecot):
    dovecot.add_message("bob", gen.message(3))
    ctx = ssl.create_default_context(cafile=str(dovecot.cafile))
    p = poplib.POP3("127.0.0.1", dovecot.port, timeout=10)
    p.stls(ctx)
    p.user("bob")
    p.pass_("secret")
    _, lines, _ = p.retr(1)
    assert pop_lines_to_bytes(lines) == gen.message(3)
    p.quit()


def test_apop(dovecot):
    dovecot.add_message("alice", gen.message(2))
    p = poplib.POP3("127.0.0.1", dovecot.port, timeout=10)
    p.apop("alice", "secret")
    assert p.stat()[0] == 1
    p.quit()
    p = poplib.POP3("127.0.0.1", dovecot.port, timeout=10)
    with pytest.raises(poplib.error_proto):
        p.apop("alice", "wrong")
    p.close()


def test_apop_over_stls(dovecot):
    ctx = ssl.create_default_context(cafile=str(dovecot.cafile))
    p = poplib.POP3("127.0.0.1", dovecot.port, timeout=10)
    p.stls(ctx)
    p.apop("bob", "secret")
    assert p.stat()[0] == 0
    p.quit()


def test_sasl_plain_and_cram_md5(dovecot):
    p = poplib.POP3("127.0.0.1", dovecot.port, timeout=10)
    blob = base64.b64encode(b"\0alice\0secret").decode()
    assert p._shortcmd(f"AUTH PLAIN {blob}").startswith(b"+OK")
    p.quit()

    p = poplib.POP3("127.0.0.1", dovecot.port, timeout=10)
    p._putcmd("AUTH CRAM-MD5")
    line, _ = p._getline()
    assert line.startswith(b"+ ")
    challenge = base64.b64decode(line[2:])
    digest = hmac.new(b"secret", challenge, hashlib.md5).hexdigest()
    p._putcmd(base64.b64encode(f"bob {digest}".encode()).decode())
    assert p._getresp().startswith(b"+OK")
    p.quit()


def test_bad_password(dovecot):
    p = poplib.POP3("127.0.0.1", dovecot.port, timeout=10)
    p.user("alice")
    with pytest.raises(poplib.error_proto):
        p.pass_("nope")
    p.close()


def test_add_user_and_options(make_dovecot):
    dc = make_dovecot(users={"carol": "pw1"}, ssl=False, mechanisms="plain")
    assert dc.port_ssl is None
    p = poplib.POP3("127.0.0.1", dc.port, timeout=10)
    assert "STLS" not in p.capa()
    p.quit()
    dc.add_user("dan", "pw2")
    dc.add_message("dan", b"Subject: x\n\nhello\n")
    p = poplib.POP3("127.0.0.1", dc.port, timeout=10)
    p.user("dan")
    p.pass_("pw2")
    assert p.stat()[0] == 1
    p.quit()


def test_write_config_and_account_config(dovecot, tmp, config):
    cfg = config(keep="yes")
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    text = cfg.read_text()
    assert "account test\n" in text
    assert f"port {dovecot.port_ssl}\n" in text
    assert f"tls_ca_file {dovecot.cafile}\n" in text
    assert "keep yes\n" in text and "password secret\n" in text
    assert text.startswith("defaults\nstate ")
    cfg2 = config("bob", path=tmp / "c2", tls="starttls", auth="apop", password=None)
    text2 = cfg2.read_text()
    assert f"port {dovecot.port}\n" in text2 and "password" not in text2
    cfg3 = config(tls="off", mode=0o644, path=tmp / "c3")
    assert stat.S_IMODE(os.stat(cfg3).st_mode) == 0o644
    assert "tls_ca_file" not in cfg3.read_text()


def test_mbox_and_maildir_readers(tmp):
    msgs = gen.generate(16, seed=2) + gen.demo_messages()
    gen.write_mbox(tmp / "x.mbox", msgs)
    raw = (tmp / "x.mbox").read_bytes()
    assert b"\n>From the desk" in raw and b"\n>>From an already" in raw
    assert pt.mbox_messages(tmp / "x.mbox") == msgs
    assert len(pt.mbox_from_lines(tmp / "x.mbox")) == len(msgs)
    assert pt.mbox_messages(tmp / "missing.mbox") == []
    gen.write_maildir(tmp / "md", msgs)
    assert sorted(pt.maildir_messages(tmp / "md")) == sorted(msgs)
    m = b"Received: from x\n\tby y\nSubject: s\nReceived: z\n\nbody\nReceived: no\n"
    assert pt.strip_header(m, "Received") == b"Subject: s\nReceived: z\n\nbody\nReceived: no\n"
    assert pt.strip_header(m, "received", 0) == b"Subject: s\n\nbody\nReceived: no\n"
    assert pt.header_values(m, "Received") == ["from x by y", "z"]
    assert pt.decoded_subject(gen.message(3)).startswith("发票")


def test_generator_deterministic():
    a = gen.generate(10, seed=9, size_kb=3, big_every=5, big_kb=40)
    b = gen.generate(10, seed=9, size_kb=3, big_every=5, big_kb=40)
    assert a == b
    assert a != gen.generate(10, seed=10, size_kb=3, big_every=5, big_kb=40)
    assert 38000 < len(a[4]) < 45000 and 38000 < len(a[9]) < 45000
    assert all(2500 < len(m) < 4500 for k, m in enumerate(a) if k not in (4, 9))
