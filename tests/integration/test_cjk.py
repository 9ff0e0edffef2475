"""CJK mail as its readers see it (issue 15): rules match the text of
Japanese mail with the NEC/IBM extensions and half-width katakana, a raw
GB2312 Subject read in the charset the message declares, and HZ bodies,
in real messages fetched from Dovecot."""
import re

import popsift_test as pt

GB_BOUNCE = "邮件传输失败！".encode("gb2312")


def _msg(name, subject: bytes, body: bytes, ctype="text/plain; charset=us-ascii"):
    return (b"Message-ID: <" + name.encode() + b"@cjk>\nFrom: a@example.org\nSubject: "
            + subject + b"\nMIME-Version: 1.0\nContent-Type: " + ctype.encode()
            + b"\n\n" + body + b"\n")


def _ids(msgs):
    return sorted(pt.header_values(m, "Message-ID")[0] for m in msgs)


def test_cjk_rules_match_decoded_text(dovecot, config, run, tmp):
    msgs = [
        # roundcube's sample: NEC row 13 and an NEC-selected IBM character
        _msg("jp", b"=?ISO-2022-JP?B?GyRCLWo7M3l1OSk2SBsoQg==?=", b"hello"),
        # a raw GB2312 Subject, as a real Sina bounce sends it
        _msg("cn", GB_BOUNCE, "退信".encode("gb2312"), "text/plain; charset=gb2312"),
        # nkf: half-width katakana by ESC ( I in an ISO-2022-JP body
        _msg("kana", b"kana", b"\x1b(I6@6E\x1b(B", "text/plain; charset=ISO-2022-JP"),
        # RFC 1843's HZ example
        _msg("hz", b"hz", b"~{<:Ky2;S{#,NpJ)l6HK!#~}", "text/plain; charset=HZ-GB-2312"),
        _msg("plain", b"hello", b"nothing to see"),
    ]
    dovecot.add_messages("alice", msgs)
    rules = tmp / "r.rules"
    rules.write_text(f'match header "Subject" =~ /㈱山﨑/  mbox {tmp}/jp\n'
                     f'match header "Subject" =~ /^邮件传输失败/  discard\n'
                     f'match body =~ /ｶﾀｶﾅ/  mbox {tmp}/kana\n'
                     f'match body =~ /己所不欲/  mbox {tmp}/hz\n', encoding="utf-8")
    r = run("-f", config(tls="off", rules=rules), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert _ids(pt.mbox_messages(tmp / "jp")) == ["<jp@cjk>"]
    assert _ids(pt.mbox_messages(tmp / "kana")) == ["<kana@cjk>"]
    assert _ids(pt.mbox_messages(tmp / "hz")) == ["<hz@cjk>"]
    assert _ids(pt.mbox_messages(tmp / "inbox.mbox")) == ["<plain@cjk>"]
    # the GB2312 Subject was decided from TOP: discarded, never downloaded
    assert "C: RETR 2" not in r.stderr and "C: DELE 2" in r.stderr, r.stderr
    assert dovecot.count("alice") == 0


def test_cjk_filter_dry_run_shows_decoded_subject(run, tmp):
    f = tmp / "m.eml"
    f.write_bytes(_msg("cn", GB_BOUNCE, b"x", "text/plain; charset=GBK"))
    rules = tmp / "r.rules"
    rules.write_text('match header "Subject" =~ /邮件/ discard\n', encoding="utf-8")
    r = run("filter", "-r", rules, "--dry-run", f)
    assert r.returncode == 0, r.stderr
    assert re.search(r"邮件传输失败！.*r\.rules:1\tdiscard", r.stdout), r.stdout
