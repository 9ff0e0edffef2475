"""Rules end to end (issue 3): popsift filter over local mail, and rules
decided from TOP before the download, shown by the bytes Dovecot sent."""
import re

import popsift_test as pt

DATA = pt.REPO_ROOT / "tests" / "data"


def _msg(name, subject, body="hello\n", extra=""):
    return (f"Message-ID: <{name}@rules>\nFrom: a@example.org\nSubject: {subject}\n{extra}\n"
            + body).encode()


def test_filter_dry_run_names_rule_and_action(run):
    r = run("filter", "-r", DATA.parent.parent / "filters" / "example.rules", "--dry-run",
            *sorted(DATA.glob("*.eml")))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(list(DATA.glob("*.eml")))
    spam = next(ln for ln in lines if ln.startswith("[SPAM]"))
    assert re.search(r"filters/example\.rules:\d+\tdiscard$", spam), spam
    assert any("\tdefault\t" in ln for ln in lines)


def test_filter_delivers_to_rule_folders(run, tmp):
    rules = tmp / "r.rules"
    rules.write_text(f'match header "Subject" =~ /invoice|发票/i  mbox {tmp}/invoices\n'
                     f'match all  maildir {tmp}/rest\n')
    r = run("filter", "-r", rules, *sorted(DATA.glob("*.eml")))
    assert r.returncode == 0, r.stderr
    inv = pt.mbox_messages(tmp / "invoices")
    rest = pt.maildir_messages(tmp / "rest")
    assert len(inv) >= 2 and len(inv) + len(rest) == len(list(DATA.glob("*.eml")))


def test_bad_rules_file_is_78_with_position(run, tmp):
    rules = tmp / "bad.rules"
    rules.write_text('match header "Subject" =~ /(unclosed/ discard\n')
    r = run("filter", "-r", rules, "--dry-run", DATA / "plain.eml")
    assert r.returncode == 78
    assert re.search(r"bad\.rules:1:\d+: ", r.stderr), r.stderr


def _retr_bytes(dovecot):
    """Bytes Dovecot sent for RETR, from its logout lines."""
    return sum(int(m) for m in re.findall(r"retr=\d+/(\d+)", dovecot.log()))


def test_skip_and_discard_cost_no_body_transfer(dovecot, config, run, tmp):
    big = _msg("big", "holiday video", body="v" * 300_000 + "\n")
    spam = _msg("spam", "[SPAM] win", body="s" * 200_000 + "\n")
    keep = _msg("ok", "hello")
    dovecot.add_messages("alice", [big, spam, keep])
    rules = tmp / "r.rules"
    rules.write_text("match size > 100K and not header \"Subject\" =~ /SPAM/  skip\n"
                     "match header \"Subject\" =~ /\\[SPAM\\]/  discard\n")
    r = run("-f", config(tls="off", rules=rules), "-v", "run")
    assert r.returncode == 0, r.stderr
    assert "C: RETR 3" in r.stderr and "C: RETR 1" not in r.stderr and "C: RETR 2" not in r.stderr
    assert "C: DELE 2" in r.stderr
    got = pt.mbox_messages(tmp / "inbox.mbox")
    assert [pt.header_values(m, "Message-ID")[0] for m in got] == ["<ok@rules>"]
    assert dovecot.count("alice") == 1, "the skipped message stays on the server"
    assert _retr_bytes(dovecot) < 10_000, "neither big body crossed the wire"
    # a rerun neither downloads nor deletes the skipped message
    r = run("-f", config(tls="off", rules=rules), "run")
    assert r.returncode == 0 and dovecot.count("alice") == 1


def test_run_dry_run_delivers_and_deletes_nothing(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [_msg("a", "[SPAM] x"), _msg("b", "invoice 7")])
    rules = tmp / "r.rules"
    rules.write_text(f"match header \"Subject\" =~ /SPAM/ discard\n"
                     f"match header \"Subject\" =~ /invoice/ mbox {tmp}/inv\n")
    r = run("-f", config(tls="off", rules=rules), "-v", "run", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "RETR" not in r.stderr and "DELE" not in r.stderr
    assert re.search(r"\[SPAM\] x \| .*r\.rules:1 \| discard", r.stdout), r.stdout
    assert re.search(r"invoice 7 \| .*r\.rules:2 \| mbox ", r.stdout), r.stdout
    assert not (tmp / "inv").exists() and not (tmp / "inbox.mbox").exists()
    assert dovecot.count("alice") == 2


def test_body_rule_downloads_then_decides(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [_msg("b1", "statement", body="your 发票 is here\n"),
                                   _msg("b2", "statement", body="nothing\n")])
    rules = tmp / "r.rules"
    rules.write_text(f"match body =~ /发票/ mbox {tmp}/inv\n")
    r = run("-f", config(tls="off", rules=rules), "run")
    assert r.returncode == 0, r.stderr
    assert [pt.header_values(m, "Message-ID")[0] for m in pt.mbox_messages(tmp / "inv")] \
        == ["<b1@rules>"]
    assert [pt.header_values(m, "Message-ID")[0] for m in pt.mbox_messages(tmp / "inbox.mbox")] \
        == ["<b2@rules>"]
    assert dovecot.count("alice") == 0


def test_filter_writer_threads_keep_order_and_every_message(run, tmp):
    """`popsift filter` writes through worker threads (filter-pool.c): each
    mbox keeps the input order, `continue` copies (targets of two workers)
    and a spilled 3 MB message (written by the main thread) land too, and
    a Maildir that cannot be written fails only its own messages (75)."""
    src = tmp / "in"
    for sub in ("tmp", "new", "cur"):
        (src / sub).mkdir(parents=True)
    kinds = ["a", "b", "c", "d", "e"]
    for i in range(1500):
        k = kinds[i % 5]
        body = ("x" * 3_000_000 + "\n") if i == 700 else f"n {i}\n"
        (src / "new" / f"{i:05d}.m").write_bytes(_msg(f"{i:05d}", f"{k} {i:05d}", body))
    (tmp / "blocked").write_text("a file where a Maildir should be\n")
    rules = tmp / "r.rules"
    rules.write_text(
        f'match header "Subject" =~ /^a /  mbox {tmp}/a.mbox\n'
        f'match header "Subject" =~ /^b /  mbox {tmp}/b.mbox\n'
        f'match header "Subject" =~ /^c /  mbox {tmp}/c.mbox continue\n'
        f'match header "Subject" =~ /^c /  maildir {tmp}/c-copy\n'
        f'match header "Subject" =~ /^d /  maildir {tmp}/d\n'
        f'match header "Subject" =~ /^e /  maildir {tmp}/blocked/e\n')
    r = run("filter", "-r", rules, "--maildir", src)
    assert r.returncode == 75, r.stderr
    assert "blocked/e" in r.stderr
    for k in ("a", "b", "c"):
        got = pt.mbox_messages(tmp / f"{k}.mbox")
        ids = [pt.header_values(m, "Message-ID")[0] for m in got]
        want = [f"<{i:05d}@rules>" for i in range(1500) if kinds[i % 5] == k]
        assert ids == want, f"{k}.mbox out of order or incomplete"
    assert len(pt.maildir_messages(tmp / "c-copy")) == 300
    d = pt.maildir_messages(tmp / "d")
    assert len(d) == 300
    assert any(len(m) > 3_000_000 for m in pt.mbox_messages(tmp / "a.mbox"))
