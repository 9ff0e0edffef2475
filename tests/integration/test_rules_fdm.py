"""fdm's conditions end to end (issue 15): `age` decided from TOP n 0, so
an old message is left on the server without its body crossing the wire
(POP3 dialog and Dovecot's retr= bytes), and attachment rules sorting a
message with a PDF and one with an .exe whose names are RFC 2231 / RFC 2047
encoded."""
import base64
import email.utils
import re
import time

import popsift_test as pt


def _msg(name, date, body="hello\n", extra=""):
    d = f"Date: {date}\n" if date else ""
    return (f"Message-ID: <{name}@fdm>\nFrom: a@example.org\nSubject: {name}\n{d}{extra}\n"
            + body).encode()


def _retr_bytes(dovecot):
    return sum(int(m) for m in re.findall(r"retr=\d+/(\d+)", dovecot.log()))


def _ids(msgs):
    return sorted(pt.header_values(m, "Message-ID")[0] for m in msgs)


def test_age_is_decided_from_top_without_download(dovecot, config, run, tmp):
    old = email.utils.formatdate(time.time() - 60 * 86400)
    new = email.utils.formatdate(time.time() - 3600)
    dovecot.add_messages("alice", [
        _msg("old", old, body="o" * 300_000 + "\n"),
        _msg("new", new),
        _msg("nodate", None),
        _msg("baddate", "the day before yesterday"),
    ])
    rules = tmp / "r.rules"
    rules.write_text("match age > 30d  skip\n")
    r = run("-f", config(tls="off", rules=rules), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: TOP 1 0" in r.stderr
    assert "C: RETR 1" not in r.stderr, "the old message was downloaded"
    assert all(f"C: RETR {i}" in r.stderr for i in (2, 3, 4))
    assert _retr_bytes(dovecot) < 10_000, "the old body crossed the wire"
    assert _ids(pt.mbox_messages(tmp / "inbox.mbox")) == \
        ["<baddate@fdm>", "<new@fdm>", "<nodate@fdm>"], "no or bad Date: not older"
    assert dovecot.count("alice") == 1, "the old message stays on the server"


def _multipart(name, parts):
    out = (f"Message-ID: <{name}@fdm>\nFrom: a@example.org\nSubject: {name}\n"
           "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BB\"\n\n"
           "--BB\nContent-Type: text/plain; charset=utf-8\n\nsee attached\n")
    for hdr, body in parts:
        out += f"--BB\n{hdr}\n\n{body}\n"
    return (out + "--BB--\n").encode()


def test_attachment_rules_sort_pdf_and_exe(dovecot, config, run, tmp):
    pdf = base64.encodebytes(b"%PDF-1.4\n" + b"x" * 6000).decode()
    exe = base64.encodebytes(b"MZ" + b"\0" * 100).decode()
    name = base64.b64encode("Überweisung.exe".encode()).decode()
    dovecot.add_messages("alice", [
        _multipart("invoice", [(
            "Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment;\n filename*0*=utf-8''Rechnung%20M%C3%A4rz;\n"
            " filename*1=\".pdf\"", pdf)]),
        _multipart("virus", [(
            f"Content-Type: application/octet-stream; name=\"=?UTF-8?B?{name}?=\"\n"
            "Content-Transfer-Encoding: base64", exe)]),
        _msg("plain", None),
    ])
    rules = tmp / "r.rules"
    rules.write_text(
        f"match attachment name =~ /^Überweisung\\.exe$/  maildir {tmp}/quarantine\n"
        f"match attachment type =~ /pdf/ and attachment name =~ /März/ and "
        f"attachment size > 5K  mbox {tmp}/invoices\n"
        f"match attachments > 0  mbox {tmp}/other\n")
    r = run("-f", config(tls="off", rules=rules), "run")
    assert r.returncode == 0, r.stderr
    assert _ids(pt.maildir_messages(tmp / "quarantine")) == ["<virus@fdm>"]
    assert _ids(pt.mbox_messages(tmp / "invoices")) == ["<invoice@fdm>"]
    assert not (tmp / "other").exists()
    assert _ids(pt.mbox_messages(tmp / "inbox.mbox")) == ["<plain@fdm>"]
    assert dovecot.count("alice") == 0
