"""popsift import: .fetchmailrc conversion, and seeding the state from the
UIDL lists written by the real fetchmail, mpop and getmail6 (Debian
packages) against the test Dovecot: after the import popsift fetches only
what is new."""

import os
import shutil
import sqlite3
import subprocess

import pytest

import popsift_test as pt


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed (apt-get install {tool})")


def msg(i, tag="m"):
    return f"From: a@example.org\nSubject: {tag}{i}\nMessage-ID: <{tag}{i}@x>\n\nbody {i}\n".encode()


def subjects(data_or_msgs):
    if isinstance(data_or_msgs, (bytes, bytearray)):
        return [ln.split(b": ", 1)[1].decode() for ln in data_or_msgs.splitlines()
                if ln.startswith(b"Subject: ")]
    return [pt.header_values(m, "Subject")[0] for m in data_or_msgs]


def fetchmailrc(tmp, dc, keep=True, out=None):
    """A .fetchmailrc in fetchmail's free-form syntax for alice on dc."""
    rc = tmp / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll localhost with proto pop3 port {dc.port_ssl} uidl\n"
        f"  user 'alice' there with password '{dc.users['alice']}' is 'root' here\n"
        f"  options {'keep' if keep else 'nokeep'} ssl sslcertck sslcertfile '{dc.cafile}'\n"
        f"  mda \"cat >> {out or tmp / 'mail.out'}\"\n")
    os.chmod(rc, 0o600)
    return rc


def run_fetchmail(tmp, rc):
    r = subprocess.run(["fetchmail", "-f", str(rc), "-i", str(tmp / "fetchids"), "--nodetach"],
                       capture_output=True, text=True, env={**os.environ, "HOME": str(tmp)},
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp / "fetchids"


def state_rows(db, account="test"):
    with sqlite3.connect(db) as c:
        return c.execute("SELECT uidl, state, first_seen, action FROM messages "
                         "WHERE account=? ORDER BY uidl", (account,)).fetchall()


# ------------------------------------------------------------ fetchmailrc

def test_switch_from_fetchmail(dovecot, run, tmp):
    """fetchmail (keep, uidl) fetched 3; convert its rc, import its
    .fetchids; popsift delivers only the 2 that came after."""
    need("fetchmail")
    dovecot.add_messages("alice", [msg(i) for i in range(3)])
    rc = fetchmailrc(tmp, dovecot)
    ids = run_fetchmail(tmp, rc)
    assert ids.read_text().count("alice@localhost ") == 3
    assert subjects((tmp / "mail.out").read_bytes()) == ["m0", "m1", "m2"]

    r = run("import", "fetchmailrc", rc)
    assert r.returncode == 0, r.stderr
    assert "1 account converted" in r.stderr and "popsift import fetchids" in r.stderr
    assert "account alice\nhost localhost\n" in r.stdout
    assert f"port {dovecot.port_ssl}\n" in r.stdout and "tls on\n" in r.stdout
    assert f"tls_ca_file {dovecot.cafile}\n" in r.stdout and "keep yes\n" in r.stdout
    cfg = pt.write_config(tmp / "popsift.conf", r.stdout)
    env = {"HOME": tmp, "XDG_CONFIG_HOME": None}
    r = run("-f", cfg, "check", env=env)
    assert r.returncode == 0, r.stderr

    r = run("-f", cfg, "import", "fetchids", ids, env=env)
    assert r.returncode == 0, r.stderr
    assert "alice: 3 UIDLs of alice@localhost: 3 imported, 0 already known" in r.stdout

    dovecot.add_messages("alice", [msg(i) for i in range(3, 5)])
    r = run("-f", cfg, "run", env=env)
    assert r.returncode == 0, r.stderr
    assert subjects((tmp / "mail.out").read_bytes()) == ["m0", "m1", "m2", "m3", "m4"]
    assert dovecot.count("alice") == 5            # keep yes, as fetchmail had it


def test_fetchmailrc_summary_and_comments(run, tmp):
    rc = tmp / "rc"
    rc.write_text("set daemon 600\nset postmaster root\n"
                  "poll pop.example.com proto pop3 user 'bob' there with password 'pw' "
                  "is 'bob' here options fetchall limit 2000000\n"
                  "poll imap.example.com proto imap user x pass y\n")
    r = run("import", "fetchmailrc", rc)
    assert r.returncode == 0, r.stderr
    assert "defaults\ninterval 600\n" in r.stdout
    assert "max_size 2000000\n" in r.stdout and "match size" not in r.stdout
    assert "# could not convert: poll imap.example.com: proto imap" in r.stdout
    assert "1 account converted; could not convert 3 settings:" in r.stderr
    assert f"{rc}:2: set postmaster root" in r.stderr
    assert f"{rc}:3: fetchall" in r.stderr


def test_fetchmailrc_errors(run, tmp):
    r = run("import", "fetchmailrc", tmp / "missing")
    assert r.returncode == 66 and "missing" in r.stderr
    (tmp / "bad").write_text("poll x\n  user 'open\n")
    r = run("import", "fetchmailrc", tmp / "bad")
    assert r.returncode == 65 and f"{tmp / 'bad'}:2: unterminated" in r.stderr
    (tmp / "imap").write_text("poll x proto imap user a\n")
    r = run("import", "fetchmailrc", tmp / "imap")
    assert r.returncode == 65 and "no POP3 account to convert" in r.stderr


def test_fetchmailrc_default_path_and_stdin(run, tmp):
    (tmp / ".fetchmailrc").write_text("poll h user u pass p ssl\n")
    r = run("import", "fetchmailrc", env={"HOME": tmp})
    assert r.returncode == 0 and "account u\nhost h\n" in r.stdout, r.stderr
    r = run("import", "fetchmailrc", "-", input="poll h2 user v pass p ssl\n")
    assert r.returncode == 0 and "account v\nhost h2\n" in r.stdout, r.stderr


# ------------------------------------------------------------ UIDL lists

@pytest.mark.parametrize("keep", ["yes", "no"])
def test_fetchids_then_only_new(dovecot, config, run, tmp, keep):
    need("fetchmail")
    dovecot.add_messages("alice", [msg(i) for i in range(3)])
    ids = run_fetchmail(tmp, fetchmailrc(tmp, dovecot))
    dovecot.add_messages("alice", [msg(i) for i in range(3, 5)])
    cfg = config(host="localhost", keep=keep)
    r = run("-f", cfg, "import", "fetchids", ids)
    assert r.returncode == 0, r.stderr
    assert "test: 3 UIDLs of alice@localhost: 3 imported" in r.stdout
    assert [s for _, s, _, a in state_rows(tmp / "state.db")] == ["delivered"] * 3
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert subjects(pt.mbox_messages(tmp / "inbox.mbox")) == ["m3", "m4"]
    # keep no: what fetchmail delivered is deleted now, like the rest
    assert dovecot.count("alice") == (5 if keep == "yes" else 0)
    r = run("-f", cfg, "run")
    assert r.returncode == 0 and len(pt.mbox_messages(tmp / "inbox.mbox")) == 2


def test_mpop_uidls_then_only_new(dovecot, config, run, tmp):
    need("mpop")
    dovecot.add_messages("alice", [msg(i) for i in range(3)])
    rc = tmp / "mpoprc"
    rc.write_text(f"account default\nhost {dovecot.host}\nport {dovecot.port_ssl}\ntls on\n"
                  f"tls_starttls off\ntls_trust_file {dovecot.cafile}\nuser alice\n"
                  f"password {dovecot.users['alice']}\nkeep on\n"
                  f"uidls_file {tmp}/mpop_uidls\ndelivery mbox {tmp}/mpop.mbox\n")
    os.chmod(rc, 0o600)
    r = subprocess.run(["mpop", "-C", str(rc), "-a"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (tmp / "mpop_uidls").read_text()
    assert f" 3 {dovecot.host} alice\n" in text

    dovecot.add_messages("alice", [msg(i) for i in range(3, 6)])
    cfg = config(keep="yes")
    r = run("-f", cfg, "import", "mpop-uidls", tmp / "mpop_uidls")
    assert r.returncode == 0, r.stderr
    assert f"test: 3 UIDLs of alice@{dovecot.host}: 3 imported" in r.stdout
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert subjects(pt.mbox_messages(tmp / "inbox.mbox")) == ["m3", "m4", "m5"]


def getmail_run(tmp, dc):
    gd = tmp / "getmail"
    gd.mkdir()
    (gd / "getmailrc").write_text(
        f"[retriever]\ntype = SimplePOP3SSLRetriever\nserver = {dc.host}\nport = {dc.port_ssl}\n"
        f"username = alice\npassword = {dc.users['alice']}\nca_certs = {dc.cafile}\n\n"
        "[destination]\ntype = MDA_external\npath = /bin/sh\n"
        f"arguments = (\"-c\", \"cat >> {tmp}/getmail.out\")\nallow_root_commands = true\n\n"
        "[options]\ndelete = false\nread_all = false\n")
    r = subprocess.run(["getmail", "--getmaildir", str(gd), "--rcfile", "getmailrc"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return gd / f"oldmail-{dc.host}-{dc.port_ssl}-alice"


def test_getmail_oldmail_then_only_new(dovecot, config, run, tmp):
    need("getmail")
    dovecot.add_messages("alice", [msg(i) for i in range(2)])
    old = getmail_run(tmp, dovecot)
    raw = old.read_bytes()
    assert raw.count(b"\0") == 2
    stamps = sorted(int(ln.split(b"\0")[1]) for ln in raw.splitlines())

    dovecot.add_messages("alice", [msg(2)])
    cfg = config(keep="30d")
    r = run("-f", cfg, "import", "getmail-oldmail", old)
    assert r.returncode == 0, r.stderr
    assert "2 imported" in r.stdout
    rows = state_rows(tmp / "state.db")
    # first seen = when getmail fetched it, so keep 30d counts from then
    assert sorted(fs for _, _, fs, _ in rows) == stamps
    assert {a for *_, a in rows} == {"import getmail-oldmail"}
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert subjects(pt.mbox_messages(tmp / "inbox.mbox")) == ["m2"]
    assert dovecot.count("alice") == 3


# ------------------------------------------------------------ matching and errors

def test_unmatched_then_named_account(config, run, tmp):
    (tmp / "ids").write_text("carol@other.example.org U1\ncarol@other.example.org U2\n")
    cfg = config()
    r = run("-f", cfg, "import", "fetchids", tmp / "ids")
    assert r.returncode == 65
    assert "carol@other.example.org (2 UIDLs): no account" in r.stderr
    assert "not imported" in r.stderr and r.stdout == ""
    cfg = config(user="carol")
    r = run("-f", cfg, "import", "fetchids", tmp / "ids", "test")
    assert r.returncode == 0, r.stderr
    assert "test: 2 UIDLs of carol@other.example.org: 2 imported" in r.stdout
    r = run("-f", cfg, "import", "fetchids", tmp / "ids", "nosuch")
    assert r.returncode == 64 and 'no account "nosuch"' in r.stderr


def test_partial_match_and_reimport(dovecot, config, run, tmp):
    (tmp / "ids").write_text(f"alice@{dovecot.host} A1\nalice@{dovecot.host} A2\n"
                             "zed@elsewhere Z1\n")
    cfg = config()
    r = run("-f", cfg, "import", "fetchids", tmp / "ids")
    assert r.returncode == 0, r.stderr
    assert "2 imported, 0 already known" in r.stdout and "zed@elsewhere" in r.stderr
    r = run("-f", cfg, "import", "fetchids", tmp / "ids")
    assert r.returncode == 0 and "0 imported, 2 already known" in r.stdout


def test_dry_run_writes_nothing(dovecot, config, run, tmp):
    (tmp / "ids").write_text(f"alice@{dovecot.host} A1\n")
    cfg = config()
    r = run("-f", cfg, "--dry-run", "import", "fetchids", tmp / "ids")
    assert r.returncode == 0, r.stderr
    assert "test: would import 1 UIDL of alice@" in r.stdout
    assert not (tmp / "state.db").exists()


def test_existing_state_not_overwritten(dovecot, config, run, tmp):
    dovecot.add_messages("alice", [msg(0)])
    cfg = config(keep="yes")
    assert run("-f", cfg, "run").returncode == 0
    (uidl, st, first, _), = state_rows(tmp / "state.db")
    (tmp / "ids").write_text(f"alice@{dovecot.host} {uidl}\nalice@{dovecot.host} NEW\n")
    r = run("-f", cfg, "import", "fetchids", tmp / "ids")
    assert r.returncode == 0 and "1 imported, 1 already known" in r.stdout
    assert (uidl, st, first) in [(u, s, f) for u, s, f, _ in state_rows(tmp / "state.db")]


def test_bad_files(config, run, tmp):
    cfg = config()
    (tmp / "ids").write_text("alice@localhost\n")
    r = run("-f", cfg, "import", "fetchids", tmp / "ids")
    assert r.returncode == 65 and "line 1: expected" in r.stderr
    (tmp / "uidls").write_text(" 2 host alice\nONE\n")
    r = run("-f", cfg, "import", "mpop-uidls", tmp / "uidls")
    assert r.returncode == 65 and "ends inside a list" in r.stderr
    (tmp / "oldmail").write_bytes(b"x\0001\n")
    r = run("-f", cfg, "import", "getmail-oldmail", tmp / "oldmail")
    assert r.returncode == 65 and "oldmail-HOST-PORT-USER" in r.stderr
    r = run("-f", cfg, "import", "fetchids", tmp / "missing")
    assert r.returncode == 66
    r = run("-f", cfg, "import", "pine", tmp / "ids")
    assert r.returncode == 64 and "usage: popsift import" in r.stderr
    r = run("-f", tmp / "noconfig", "import", "fetchids", tmp / "uidls")
    assert r.returncode == 65          # the file is read first: not a fetchids file
