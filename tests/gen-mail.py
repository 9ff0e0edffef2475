#!/usr/bin/python3
"""gen-mail.py — deterministic sample mail for popsift's tests, demo and benchmarks.

    gen-mail.py --count N [--seed S] [--size-kb K] [--big-every M --big-kb B]
                (--maildir DIR | --mbox FILE | --eml DIR | --stdout)
    gen-mail.py --demo (--maildir DIR | --mbox FILE | --eml DIR | --stdout)

The same arguments always give the same bytes.  Messages use LF line ends
(as stored on disk).  --count cycles through these kinds, so any 8
consecutive messages hold one of each:

    plain      ASCII text, a folded References header
    stuffing   body lines "From ...", ".", "..", ".x", ">From ", ">>From "
               (mboxrd quoting, POP3 dot-stuffing)
    utf8       RFC 2047 UTF-8 subject with 发票 (invoice), QP UTF-8 body
    gbk        RFC 2047 GBK subject with 发票, base64 GBK body
    list       a mailing-list message with List-Id <dev.lists.example.org>
    spam       "[SPAM]" subject
    multipart  multipart/mixed, text part + base64 attachment
    8bit       Content-Transfer-Encoding: 8bit UTF-8 body, ISO-8859-1 Q subject

Importable (the file name has a dash):
    spec = importlib.util.spec_from_file_location("gen_mail", "tests/gen-mail.py")
    or popsift_test.load_genmail();  then
    generate(count, seed=1, size_kb=None, big_every=None, big_kb=None,
             to="alice@example.org") -> list[bytes]
    message(i, seed=1, size=None, to=...) -> bytes      (one, by index)
    demo_messages(which=None) -> list[bytes]  (which: "personal" | "work" | None)
    write_maildir(dir, msgs), write_mbox(path, msgs), write_eml(dir, msgs)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.utils
import os
import random
import re
import sys
import textwrap
import time
from pathlib import Path

KINDS = ["plain", "stuffing", "utf8", "gbk", "list", "spam", "multipart", "8bit"]

BASE_TIME = 1709283600  # 2024-03-01 09:00:00 UTC
DOMAIN_TO = "example.org"

FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan",
         "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent",
         "Victor", "Walter", "Wang Fang", "Li Wei", "Zhang Min"]
DOMAINS = ["example.com", "example.net", "mail.example.org", "corp.example",
           "lists.example.org", "shop.example.com"]
WORDS = ("the of and to in is that for it as was with be by on not he this are or "
         "his from at which but have an they you were her she there been one all "
         "we their has would when if so what out up more about into them can only "
         "other time new some could these two may first then do any like my now "
         "over such our man me even most made after also did many before must "
         "through back years where much your way well down should because each "
         "just those people how too little state good very make world still own "
         "see men work long get here between both life being under never day same "
         "another know while last might us great old year off come since against "
         "go came right used take three meeting report invoice server backup "
         "release schedule budget review draft quarterly deadline ticket").split()
TOPICS = ["Meeting notes", "Quarterly report", "Lunch on Friday?", "Server maintenance",
          "Your order has shipped", "Draft for review", "Backup failed", "Holiday photos",
          "Release 2.4 schedule", "Re: budget", "Ticket #4711 updated", "Welcome aboard"]


def _rng(seed: int, i: int, salt: str = "") -> random.Random:
    return random.Random(f"{seed}/{i}/{salt}")


def _words(r: random.Random, n: int) -> str:
    return " ".join(r.choice(WORDS) for _ in range(n))


def _para(r: random.Random, lines: int = 4) -> str:
    text = _words(r, lines * 11).capitalize() + "."
    return "\n".join(textwrap.wrap(text, 72)) + "\n"


def _filler(r: random.Random, nbytes: int) -> str:
    """About nbytes of ASCII text in 72-column lines (no line starts with
    'From ' or '.')."""
    if nbytes <= 0:
        return ""
    out, total = [], 0
    while total < nbytes:
        line = _words(r, 12)[:72]
        out.append(line + "\n")
        total += len(line) + 1
    return "\n" + "".join(out)


def _addr(r: random.Random) -> tuple[str, str]:
    name = r.choice(FIRST)
    local = name.lower().replace(" ", ".")
    return name, f"{local}@{r.choice(DOMAINS)}"


def _encode_word(text: str, charset: str, enc: str = "b") -> str:
    """An RFC 2047 encoded word (one line)."""
    raw = text.encode(charset)
    if enc == "b":
        return f"=?{charset.upper()}?B?{base64.b64encode(raw).decode()}?="
    q = "".join(chr(b) if (chr(b).isalnum() and b < 128) else ("_" if b == 32 else f"={b:02X}")
                for b in raw)
    return f"=?{charset.upper()}?Q?{q}?="


def _qp(text: str) -> str:
    import quopri
    return quopri.encodestring(text.encode("utf-8")).decode("ascii")


def _b64_lines(data: bytes) -> str:
    s = base64.b64encode(data).decode()
    return "\n".join(s[k:k + 76] for k in range(0, len(s), 76)) + "\n"


def _headers(r, i, seed, to, subject, from_=None, extra=(), date_offset=0):
    name, addr = from_ or _addr(r)
    t = BASE_TIME + i * 420 + r.randrange(0, 300) + date_offset
    date = email.utils.formatdate(t, localtime=False).replace("-0000", "+0000")
    msgid = f"<{t}.{i}.{seed}.{r.randrange(16**8):08x}@{addr.split('@')[1]}>"
    from_hdr = f"{name} <{addr}>" if name.isascii() else \
        f"{_encode_word(name, 'utf-8')} <{addr}>"
    h = [
        f"Return-Path: <{addr}>",
        f"Received: from mx{r.randrange(1, 5)}.{addr.split('@')[1]} (mx.{addr.split('@')[1]} "
        f"[192.0.2.{r.randrange(1, 255)}])\n\tby pop.{DOMAIN_TO} with ESMTPS id {r.randrange(16**10):010X}\n"
        f"\tfor <{to}>; {date}",
        f"From: {from_hdr}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: {msgid}",
        "MIME-Version: 1.0",
        *extra,
    ]
    return "\n".join(h) + "\n", addr, t


def _build(kind: str, i: int, seed: int, to: str, pad: int) -> bytes:
    r = _rng(seed, i, kind)
    fr = _rng(seed, i, "filler")
    topic = r.choice(TOPICS)
    if kind == "plain":
        refs = " ".join(f"<{r.randrange(16**8):08x}.{k}@{DOMAIN_TO}>" for k in range(4))
        refs = "\n\t".join(textwrap.wrap(refs, 60))
        head, _, _ = _headers(r, i, seed, to, f"{topic} ({i})", extra=[
            f"References: {refs}",
            "Content-Type: text/plain; charset=us-ascii",
            "Content-Transfer-Encoding: 7bit"])
        body = f"Hi,\n\n{_para(r)}\n{_para(r, 2)}\nCheers\n" + _filler(fr, pad)
        return (head + "\n" + body).encode("ascii")

    if kind == "stuffing":
        head, _, _ = _headers(r, i, seed, to, f"Lines that need quoting ({i})", extra=[
            "Content-Type: text/plain; charset=us-ascii",
            "Content-Transfer-Encoding: 7bit"])
        body = (
            "This body has lines that an mbox writer must quote and a POP3\n"
            "server must dot-stuff.\n"
            "\n"
            "From the desk of the managing director: (a line starting with From)\n"
            ">From an already quoted line\n"
            ">>From a doubly quoted line\n"
            ".\n"
            "..\n"
            ".hidden line starting with a dot\n"
            "...three dots\n"
            "\n"
            "From here on, the body is ordinary.\n"
            f"{_para(r, 2)}"
            "From \n"
            ".\n"
        ) + _filler(fr, pad) + "last line\n"
        return (head + "\n" + body).encode("ascii")

    if kind == "utf8":
        subj = _encode_word(f"发票 {2024000 + i} — invoice", "utf-8")
        head, _, _ = _headers(r, i, seed, to, subj, from_=("Billing", "billing@shop.example.com"),
                              extra=["Content-Type: text/plain; charset=utf-8",
                                     "Content-Transfer-Encoding: quoted-printable"])
        text = (f"您好，\n\n附件是您的发票（编号 {2024000 + i}），金额 ¥{r.randrange(100, 9999)}.00。\n"
                "Grüße, the billing team\n" + _filler(fr, pad))
        return (head + "\n" + _qp(text)).encode("ascii")

    if kind == "gbk":
        subj = _encode_word(f"发票通知 第{i}号", "gbk")
        head, _, _ = _headers(r, i, seed, to, subj, from_=("Zhang Min", "zhang.min@corp.example"),
                              extra=["Content-Type: text/plain; charset=GBK",
                                     "Content-Transfer-Encoding: base64"])
        text = ("张先生：\n\n本月的增值税发票已经开出，请查收。\n谢谢！\n" + _filler(fr, pad * 3 // 4))
        return (head + "\n" + _b64_lines(text.encode("gbk"))).encode("ascii")

    if kind == "list":
        head, _, _ = _headers(r, i, seed, to, f"[dev] {topic}", extra=[
            "List-Id: Developers <dev.lists.example.org>",
            "List-Unsubscribe: <mailto:dev-unsubscribe@lists.example.org>",
            "List-Post: <mailto:dev@lists.example.org>",
            "Precedence: list",
            "Sender: dev-bounces@lists.example.org",
            "Content-Type: text/plain; charset=us-ascii"])
        body = (f"{_para(r, 3)}\n-- \ndev mailing list\ndev@lists.example.org\n"
                "To unsubscribe, send mail to dev-unsubscribe@lists.example.org\n") + _filler(fr, pad)
        return (head + "\n" + body).encode("ascii")

    if kind == "spam":
        head, _, _ = _headers(r, i, seed, to, f"[SPAM] You have WON {r.randrange(1, 99)} million!!!",
                              from_=("Lottery", f"winner{r.randrange(1000)}@spam.example"),
                              extra=["X-Spam-Flag: YES",
                                     f"X-Spam-Score: {r.randrange(60, 200) / 10}",
                                     "Content-Type: text/plain; charset=us-ascii"])
        body = "Click here to claim your prize: http://spam.example/claim\n" + _filler(fr, pad)
        return (head + "\n" + body).encode("ascii")

    if kind == "multipart":
        boundary = f"=_popsift_{seed}_{i}_{r.randrange(16**8):08x}"
        head, _, _ = _headers(r, i, seed, to, f"{topic} (with attachment)", extra=[
            f'Content-Type: multipart/mixed; boundary="{boundary}"'])
        att = bytes(r.getrandbits(8) for _ in range(1200 + pad * 3 // 4))
        body = (
            "This is a multi-part message in MIME format.\n\n"
            f"--{boundary}\n"
            "Content-Type: text/plain; charset=us-ascii\n\n"
            f"Please find the document attached.\n\n{_para(r, 2)}\n"
            f"--{boundary}\n"
            'Content-Type: application/pdf; name="report.pdf"\n'
            "Content-Transfer-Encoding: base64\n"
            'Content-Disposition: attachment; filename="report.pdf"\n\n'
            + _b64_lines(b"%PDF-1.4\n" + att) +
            f"\n--{boundary}--\n"
        )
        return (head + "\n" + body).encode("ascii")

    if kind == "8bit":
        subj = _encode_word("Café crème für Jürgen", "iso-8859-1", "q")
        head, _, _ = _headers(r, i, seed, to, subj, from_=("Jürgen Groß", "juergen@example.net"),
                              extra=["Content-Type: text/plain; charset=utf-8",
                                     "Content-Transfer-Encoding: 8bit"])
        body = ("Grüß Gott! Ça va? Æsir, Øresund, Ångström.\n"
                "Привет, мир. 你好，世界。 こんにちは。 🙂\n"
                f"{_para(r, 2)}") + _filler(fr, pad)
        return (head + "\n" + body).encode("utf-8")

    raise ValueError(f"unknown kind {kind}")


def message(i: int, seed: int = 1, size: int | None = None,
            to: str = f"alice@{DOMAIN_TO}", kind: str | None = None) -> bytes:
    """Message number i (0-based) of the sequence for seed; padded to about
    `size` bytes when given (never shrunk)."""
    kind = kind or KINDS[i % len(KINDS)]
    m = _build(kind, i, seed, to, 0)
    if size and size > len(m):
        m = _build(kind, i, seed, to, size - len(m))
    return m


def generate(count: int, seed: int = 1, size_kb: float | None = None,
             big_every: int | None = None, big_kb: float | None = None,
             to: str = f"alice@{DOMAIN_TO}") -> list[bytes]:
    """count messages; every big_every-th one (the big_every-th, 2*big_every-th,
    ...) is about big_kb KB, the others about size_kb KB (or natural size)."""
    out = []
    for i in range(count):
        size = int(size_kb * 1024) if size_kb else None
        if big_every and big_kb and (i + 1) % big_every == 0:
            size = int(big_kb * 1024)
        out.append(message(i, seed, size, to))
    return out


# --------------------------------------------------------------------------
# the demo set: 12 messages, 7 for the personal account, 5 for work

def _demo_msg(i, to, frm, subject, body, extra=(), charset="us-ascii", cte="7bit"):
    name, addr = frm
    t = BASE_TIME + 86400 * 14 + i * 3600 + 17 * i
    date = email.utils.formatdate(t, localtime=False).replace("-0000", "+0000")
    from_hdr = f"{name} <{addr}>" if name.isascii() else \
        f"{_encode_word(name, 'utf-8')} <{addr}>"
    h = [f"Return-Path: <{addr}>",
         f"From: {from_hdr}", f"To: {to}", f"Subject: {subject}", f"Date: {date}",
         f"Message-ID: <demo.{i}.{t}@{addr.split('@')[1]}>", "MIME-Version: 1.0", *extra]
    if not any(x.lower().startswith("content-type:") for x in extra):
        h += [f"Content-Type: text/plain; charset={charset}", f"Content-Transfer-Encoding: {cte}"]
    return ("\n".join(h) + "\n\n" + body).encode("utf-8")


def demo_messages(which: str | None = None) -> list[bytes]:
    """The demo set.  which: "personal" (7, to alice), "work" (5, to bob),
    None (all 12)."""
    alice, bob = f"alice@{DOMAIN_TO}", f"bob@{DOMAIN_TO}"
    r = random.Random(2024)
    boundary = "=_demo_boundary_1"
    photo = base64.b64encode(bytes(r.getrandbits(8) for _ in range(900))).decode()
    photo = "\n".join(photo[k:k + 76] for k in range(0, len(photo), 76))
    personal = [
        _demo_msg(0, alice, ("Mum", "mum@example.net"), "Sunday lunch",
                  "Hi love,\n\nAre you coming on Sunday? Dad is making his lasagne.\n\nMum\n"),
        _demo_msg(1, alice, ("Rust Users", "announce@lists.example.org"),
                  "[rust-users] This week in Rust 540",
                  "Hello and welcome to another issue of This Week in Rust!\n\n"
                  "-- \nrust-users mailing list\n",
                  extra=["List-Id: Rust users <rust-users.lists.example.org>",
                         "Precedence: list"]),
        _demo_msg(2, alice, ("Shop", "billing@shop.example.com"),
                  _encode_word("发票 INV-2024-0315 (invoice)", "utf-8"),
                  "您好，附件是您三月份的发票。\nYour March invoice: 42.00 EUR.\n",
                  charset="utf-8", cte="8bit"),
        _demo_msg(3, alice, ("Lottery", "winner@spam.example"),
                  "[SPAM] Congratulations, you have WON!!!",
                  "Send us your bank details to claim the prize.\n",
                  extra=["X-Spam-Flag: YES"]),
        _demo_msg(4, alice, ("Poetry Daily", "poems@example.com"), "Poem of the day",
                  "Lines an mbox must quote, and dots a POP3 server must stuff:\n\n"
                  "From far away the river runs,\n>From quoted lines the echo comes,\n"
                  ".\n..and dots that lead the line.\n"),
        _demo_msg(5, alice, ("Dad", "dad@example.net"), "Holiday photo",
                  "This is a multi-part message in MIME format.\n\n"
                  f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n"
                  "The view from the hut.\n\n"
                  f"--{boundary}\nContent-Type: image/jpeg; name=\"hut.jpg\"\n"
                  "Content-Transfer-Encoding: base64\n"
                  "Content-Disposition: attachment; filename=\"hut.jpg\"\n\n"
                  f"{photo}\n\n--{boundary}--\n",
                  extra=[f'Content-Type: multipart/mixed; boundary="{boundary}"']),
        _demo_msg(6, alice, ("Jürgen Groß", "juergen@example.net"),
                  _encode_word("Grüße aus München", "iso-8859-1", "q"),
                  "Servus! Das Wetter ist schön, der Kaffee heiß. Bis bald!\n",
                  charset="utf-8", cte="8bit"),
    ]
    work = [
        _demo_msg(7, bob, ("Zhang Min", "zhang.min@corp.example"),
                  _encode_word("会议通知：周五例会", "gbk"),
                  "Friday 10:00, room 3. 请准时参加。\n", charset="utf-8", cte="8bit"),
        _demo_msg(8, bob, ("CI", "ci@build.corp.example"), "[ci] main: build #1287 failed",
                  "Job 'test' failed on main.\n\n  tests/run.sh: 312 passed, 1 failed\n",
                  extra=["List-Id: CI notifications <ci.build.corp.example>"]),
        _demo_msg(9, bob, ("Carol", "carol@corp.example"), "Re: deployment window",
                  "> Can we deploy on Thursday?\n\nThursday 18:00 works for ops.\n\nCarol\n",
                  extra=["In-Reply-To: <demo.x@corp.example>",
                         "References: <demo.x@corp.example>"]),
        _demo_msg(10, bob, ("Supplier", "accounts@supplier.example.com"),
                  _encode_word("Rechnung für März / 发票", "utf-8"),
                  "Rechnung Nr. 2024-03-77 über 1.250,00 EUR anbei.\n",
                  charset="utf-8", cte="8bit"),
        _demo_msg(11, bob, ("Dave", "dave@corp.example"), "Quarterly report draft",
                  "Draft attached below.\n\n.\nSection 1. Revenue\n..\nFrom Q1 to Q2 we grew 12%.\n"),
    ]
    if which == "personal":
        return personal
    if which == "work":
        return work
    if which is None:
        return personal + work
    raise ValueError(which)


# --------------------------------------------------------------------------
# output

_QUOTE = re.compile(rb"^(>*From )", re.M)


def _from_line(m: bytes) -> bytes:
    mm = re.search(rb"^Return-Path: <([^>]*)>", m, re.M)
    sender = (mm.group(1) if mm and mm.group(1) else b"MAILER-DAEMON")
    d = re.search(rb"^Date: (.*)$", m, re.M)
    t = BASE_TIME
    if d:
        with contextlib.suppress(Exception):
            t = email.utils.mktime_tz(email.utils.parsedate_tz(d.group(1).decode()))
    return b"From " + sender + b" " + time.asctime(time.gmtime(t)).encode() + b"\n"


def mboxrd_bytes(msgs: list[bytes]) -> bytes:
    out = []
    for m in msgs:
        if not m.endswith(b"\n"):
            m += b"\n"
        out.append(_from_line(m) + _QUOTE.sub(rb">\1", m) + b"\n")
    return b"".join(out)


def write_mbox(path, msgs: list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(mboxrd_bytes(msgs))


def maildir_name(i: int, m: bytes) -> str:
    lf = m.count(b"\n") - m.count(b"\r\n")
    return f"{BASE_TIME + i}.M{i % 1000000}P0Q{i}.gen-mail,S={len(m)},W={len(m) + lf}"


def write_maildir(d, msgs: list[bytes]) -> None:
    d = Path(d)
    for sub in ("tmp", "new", "cur"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(msgs):
        name = maildir_name(i, m)
        tmp = d / "tmp" / name
        tmp.write_bytes(m)
        os.rename(tmp, d / "new" / name)


def write_eml(d, msgs: list[bytes]) -> None:
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(msgs):
        (d / f"{i + 1:06d}.eml").write_bytes(m)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Generate deterministic sample mail.")
    ap.add_argument("--count", type=int, help="number of messages")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size-kb", type=float, help="pad every message to about K KB")
    ap.add_argument("--big-every", type=int, metavar="M", help="every M-th message is big")
    ap.add_argument("--big-kb", type=float, metavar="B", help="size of the big ones in KB")
    ap.add_argument("--to", default=f"alice@{DOMAIN_TO}", help="To: address")
    ap.add_argument("--demo", action="store_true", help="the 12-message demo set")
    ap.add_argument("--which", choices=["personal", "work"], help="part of the demo set")
    out = ap.add_mutually_exclusive_group(required=True)
    out.add_argument("--maildir", metavar="DIR")
    out.add_argument("--mbox", metavar="FILE")
    out.add_argument("--eml", metavar="DIR", help="one NNNNNN.eml file per message")
    out.add_argument("--stdout", action="store_true", help="mboxrd on standard output")
    a = ap.parse_args(argv)
    if a.demo:
        msgs = demo_messages(a.which)
    else:
        if a.count is None or a.count < 0:
            ap.error("--count N (or --demo) is required")
        if bool(a.big_every) != bool(a.big_kb):
            ap.error("--big-every and --big-kb go together")
        msgs = generate(a.count, a.seed, a.size_kb, a.big_every, a.big_kb, a.to)
    if a.maildir:
        write_maildir(a.maildir, msgs)
    elif a.mbox:
        write_mbox(a.mbox, msgs)
    elif a.eml:
        write_eml(a.eml, msgs)
    else:
        sys.stdout.buffer.write(mboxrd_bytes(msgs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
