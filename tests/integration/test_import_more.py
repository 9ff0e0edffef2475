"""popsift import mpoprc / getmailrc, the fetchmailrc fixes of issue 17 and
`check -v` listing what could not be converted.  Every sample file is
first shown valid to the real tool (mpop -P, fetchmail --configdump,
getmail --dump: exit 0, no warning), then converted and checked by
popsift; the switches from mpop and getmail run end to end against the
test Dovecot."""

import os
import re
import shutil
import subprocess

import pytest

import popsift_test as pt


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed (apt-get install {tool})")


def msg(i, tag="m"):
    return f"From: a@example.org\nSubject: {tag}{i}\nMessage-ID: <{tag}{i}@x>\n\nbody {i}\n".encode()


def subjects(path):
    return [pt.header_values(m, "Subject")[0] for m in pt.mbox_messages(path)]


def tool(args, home, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "HOME": str(home)}, **kw)
    assert r.returncode == 0, r.stdout + r.stderr
    complaints = [ln for ln in (r.stderr + r.stdout).splitlines()
                  if re.search(r"warning|error|ignoring|unknown", ln, re.I)
                  and "'warnings'" not in ln and "running as root" not in ln.lower()]
    assert complaints == [], r.stdout + r.stderr
    return r


def convert_and_check(run, tmp, kind, *files, env=None):
    """popsift import KIND FILES > config; popsift check -v on it."""
    r = run("import", kind, *files, env=env)
    assert r.returncode == 0, r.stderr
    cfg = pt.write_config(tmp / f"{kind}.conf", r.stdout)
    c = run("-f", cfg, "-v", "check", env={"HOME": tmp, **(env or {})})
    assert c.returncode == 0, c.stderr
    return r, c, cfg


# ------------------------------------------------------------ fetchmailrc fixes

FETCHMAILRC = """\
set no syslog
poll pop.a.example proto pop3 user 'alice' there with password 'pw' is root here
  options keep ssl fetchlimit 50 limit 2000000
  mda "/usr/bin/procmail -f %F -d %T"
skip pop.b.example proto pop3 user 'bob' there with password 'pw' is root here
  options nokeep ssl mda "/bin/sh -c 'procmail -f %F -d bob'"
poll imap.c.example proto imap user carol password x
"""


def test_fetchmailrc_fixes_with_a_file_fetchmail_reads(run, tmp):
    need("fetchmail")
    rc = tmp / "fetchmailrc"
    rc.write_text(FETCHMAILRC)
    os.chmod(rc, 0o600)
    tool(["fetchmail", "-f", str(rc), "--configdump"], tmp)
    r, c, cfg = convert_and_check(run, tmp, "fetchmailrc", rc)
    out = r.stdout
    assert "max_messages 50\n" in out and "max_size 2000000\n" in out
    assert "fetchlimit" not in out and "match size" not in out
    # the skipped poll, keep no: never a live account
    assert "\naccount bob\n" not in out and "\n#~ account bob\n" in out
    assert "#~ keep no\n" in out and "# skip pop.b.example: fetchmail does not poll it" in out
    assert "#~ deliver mda /bin/sh -c 'procmail -f \"%F\" -d bob'\n" in out
    assert "deliver mda /usr/bin/procmail -f %F -d root\n" in out
    assert "1 commented out: skip" in r.stderr
    # check: the one account; -v lists the comment with the config's file:line
    assert "1 account, OK" in c.stderr
    line = out.splitlines().index(next(ln for ln in out.splitlines()
                                       if "could not convert: poll imap.c.example" in ln)) + 1
    assert f"{cfg}:{line}: could not convert: poll imap.c.example: proto imap" in c.stdout
    q = run("-f", cfg, "check", env={"HOME": tmp})
    assert q.returncode == 0 and "1 \"could not convert\" comment" in q.stderr
    assert "check -v lists them" in q.stderr and "could not convert: poll" not in q.stdout


def test_fetchmailrc_passwordfile(run, tmp):
    # the fetchmail 6.4.37 installed here knows no passwordfile: popsift's
    # own reading only; the command it writes must give the first line.
    pw = tmp / "pw file"
    pw.write_text("s3cret\nsecond line\n")
    rc = tmp / "rc"
    rc.write_text(f"poll h.example user u passwordfile \"{pw}\" ssl\n")
    r = run("import", "fetchmailrc", rc)
    assert r.returncode == 0, r.stderr
    assert f"password_command cat -- '{pw}'\n" in r.stdout
    cmd = r.stdout.split("password_command ", 1)[1].split("\n", 1)[0]
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True).stdout
    assert out.splitlines()[0] == "s3cret"


# ------------------------------------------------------------ mpoprc

MPOPRC = """\
# a sample ~/.mpoprc
defaults
tls on
tls_starttls off
keep on
delivery maildir ~/Maildir/

account work
host pop.work.example
user alice@work.example
passwordeval "echo s3cret | head -n1"
auth plain
skipsize 10m
killsize 50m
only_new off
received_header off
uidls_file ~/.mpop/%U_at_%H

account home : work
host pop.home.example
user bob
password "se cret #1"
tls_starttls on
tls_trust_file /etc/ssl/certs/ca-certificates.crt
tls_fingerprint 01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF
delivery mda /usr/bin/procmail -f '%F' -d $USER
filter if grep -q '^X-Spam-Status: Yes'; then exit 1; else exit 0; fi
timeout 30

account old
host pop.old.example
user carol
tls off
tls_certcheck off
delivery mbox ~/mail/inbox
keep off
"""


def test_mpoprc_sample_mpop_reads(run, tmp):
    need("mpop")
    rc = tmp / "mpoprc"
    rc.write_text(MPOPRC)
    os.chmod(rc, 0o600)
    tool(["mpop", "-C", str(rc), "-P", "--all-accounts"], tmp)
    r, c, cfg = convert_and_check(run, tmp, "mpoprc", rc)
    out = r.stdout
    work = out.split("account work\n", 1)[1].split("\naccount ", 1)[0]
    assert "host pop.work.example\nuser alice@work.example\n" in work
    assert "password_command /bin/sh -c 'echo s3cret | head -n1'\nauth plain\ntls on\n" in work
    assert "keep yes\nmax_size 10m\nreceived_header no\ndeliver maildir ~/Maildir/\n" in work
    assert "could not convert: killsize 50m" in work and "only_new off" in work
    home = out.split("account home\n", 1)[1].split("\naccount ", 1)[0]
    assert "password \"se cret #1\"\n" in home and "tls starttls\n" in home  # inherited plain
    assert "tls_ca_file /etc/ssl/certs/ca-certificates.crt\n" in home
    assert "deliver mda /bin/sh -c '/usr/bin/procmail -f '\\''%F'\\'' -d $USER'\n" in home
    assert "timeout 30\n" in home and "could not convert: filter if grep" in home
    assert "could not convert: tls_fingerprint 01:23" in home
    old = out.split("account old\n", 1)[1]
    assert "tls starttls\nkeep no\ndeliver mbox ~/mail/inbox\n" in old
    assert "could not convert: tls_certcheck off" in old and "secret-tool lookup" in old
    assert "3 accounts converted; could not convert 5 settings:" in r.stderr
    assert "popsift import mpop-uidls ~/.mpop/alice@work.example_at_pop.work.example work" \
        in r.stderr
    assert "popsift import mpop-uidls ~/.mpop_uidls/carol_at_pop.old.example old" in r.stderr
    assert "3 accounts, OK" in c.stderr
    assert len(re.findall(rf"^{re.escape(str(cfg))}:\d+: could not convert:", c.stdout,
                          re.M)) == 7     # killsize and only_new in work and in home


def test_switch_from_mpop(dovecot, run, tmp):
    """mpop fetched 3 (keep on); convert its rc, import its UIDLs with the
    line the converter printed; popsift fetches only the 2 new ones."""
    need("mpop")
    dovecot.add_messages("alice", [msg(i) for i in range(3)])
    rc = tmp / "mpoprc"
    rc.write_text(f"defaults\nkeep on\n\naccount mine\nhost {dovecot.host}\n"
                  f"port {dovecot.port_ssl}\ntls on\ntls_starttls off\n"
                  f"tls_trust_file {dovecot.cafile}\nuser alice\n"
                  f"passwordeval \"echo {dovecot.users['alice']}\"\n"
                  f"uidls_file {tmp}/uidls/%U_at_%H\ndelivery mbox {tmp}/inbox.mbox\n")
    os.chmod(rc, 0o600)
    (tmp / "inbox.mbox").touch()
    tool(["mpop", "-C", str(rc), "-a"], tmp)
    assert subjects(tmp / "inbox.mbox") == ["m0", "m1", "m2"]

    r, c, cfg = convert_and_check(run, tmp, "mpoprc", rc)
    assert f"password_command echo {dovecot.users['alice']}\n" in r.stdout
    assert "everything converted" in r.stderr
    with open(cfg, "a") as f:
        f.write(f"\ndefaults\nstate {tmp}/state.db\n")
    hint = next(ln.strip() for ln in r.stderr.splitlines() if "import mpop-uidls" in ln)
    args = hint.split()[1:]
    assert args == ["import", "mpop-uidls", f"{tmp}/uidls/alice_at_{dovecot.host}", "mine"]
    i = run("-f", cfg, *args, env={"HOME": tmp})
    assert i.returncode == 0 and "3 imported" in i.stdout, i.stderr

    dovecot.add_messages("alice", [msg(i) for i in range(3, 5)])
    r = run("-f", cfg, "run", env={"HOME": tmp})
    assert r.returncode == 0, r.stderr
    assert subjects(tmp / "inbox.mbox") == ["m0", "m1", "m2", "m3", "m4"]
    assert dovecot.count("alice") == 5


def test_mpoprc_default_paths_and_errors(run, tmp):
    xdg = tmp / "xdg"
    (xdg / "mpop").mkdir(parents=True)
    (xdg / "mpop" / "config").write_text("account x\nhost h.example\nuser u\npassword p\n")
    r = run("import", "mpoprc", env={"HOME": tmp, "XDG_CONFIG_HOME": xdg})
    assert r.returncode == 0 and "account x\nhost h.example\n" in r.stdout, r.stderr
    assert "could not convert: no delivery" in r.stdout
    (tmp / ".mpoprc").write_text("account y\nhost h2.example\n")
    r = run("import", "mpoprc", env={"HOME": tmp, "XDG_CONFIG_HOME": xdg})
    assert r.returncode == 0 and "account y\n" in r.stdout, r.stderr
    (tmp / "bad").write_text("host h\naccount a\n")
    r = run("import", "mpoprc", tmp / "bad")
    assert r.returncode == 65 and "bad:1: first command must be account or defaults" in r.stderr
    (tmp / "bad").write_text("account a : nosuch\nhost h\n")
    r = run("import", "mpoprc", tmp / "bad")
    assert r.returncode == 65 and "no earlier account nosuch" in r.stderr
    r = run("import", "mpoprc", tmp / "missing")
    assert r.returncode == 66


# ------------------------------------------------------------ getmailrc

def getmail_files(tmp):
    home = tmp / "home"
    (home / "Maildir").mkdir(parents=True)
    for d in ("cur", "new", "tmp"):
        (home / "Maildir" / d).mkdir()
    (home / "mail").mkdir()
    (home / "mail" / "inbox").touch()
    gd = tmp / "gm"
    gd.mkdir()
    (gd / "getmailrc-work").write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = pop.work.example\nport = 995\n"
        "username = alice@work.example\n"
        "password_command = (\"/usr/bin/pass\", \"show\", \"mail/work\")\n"
        "ca_certs = /etc/ssl/certs/ca-certificates.crt\n\n"
        "[destination]\ntype = MDA_external\npath = /bin/cat\n"
        "arguments = (\"-u\", \"--\", \"%(sender)\")\nunixfrom = true\n\n"
        "[options]\ndelete = true\nmax_message_size = 20000000\n"
        "max_messages_per_session = 200\nreceived = false\nread_all = false\nverbose = 0\n\n"
        "[filter-spam]\ntype = Filter_classifier\npath = /bin/cat\narguments = (\"-u\",)\n")
    (gd / "getmailrc-home").write_text(
        "[retriever]\ntype = SimplePOP3Retriever\nserver = pop.home.example\n"
        "username = bob\npassword = it's a \"secret\"\n\n"
        "[destination]\ntype = MultiDestination\n"
        "destinations = ('~/Maildir/', '[mbox]')\n\n"
        "[mbox]\ntype = Mboxrd\npath = ~/mail/inbox\n\n"
        "[options]\ndelete_after = 30\n")
    (gd / "getmailrc-imap").write_text(
        "[retriever]\ntype = SimpleIMAPSSLRetriever\nserver = imap.example\n"
        "username = carol\npassword = x\n\n[destination]\ntype = Maildir\npath = ~/Maildir/\n")
    return home, gd


def test_getmailrc_samples_getmail_reads(run, tmp):
    need("getmail")
    home, gd = getmail_files(tmp)
    names = ["getmailrc-work", "getmailrc-home", "getmailrc-imap"]
    for n in names:
        tool(["getmail", "--getmaildir", str(gd), "--rcfile", n, "--dump"], home)
    r, c, cfg = convert_and_check(run, tmp, "getmailrc", *(gd / n for n in names),
                                  env={"HOME": home})
    out = r.stdout
    work = out.split("account work\n", 1)[1].split("\naccount ", 1)[0]
    assert ("host pop.work.example\nport 995\nuser alice@work.example\n"
            "password_command /usr/bin/pass show mail/work\ntls on\n"
            "tls_ca_file /etc/ssl/certs/ca-certificates.crt\n") in work
    assert ("keep no\nmax_size 20000000\nmax_messages 200\nreceived_header no\n"
            "deliver mda /bin/cat -u -- %F\n") in work
    assert "could not convert: [destination] unixfrom" in work
    assert "could not convert: [filter-spam] Filter_classifier" in work
    home_acct = out.split("account home\n", 1)[1]
    assert "password \"it's a \\\"secret\\\"\"\ntls starttls\nkeep 30d\n" in home_acct
    assert "deliver maildir ~/Maildir/\ndeliver mbox ~/mail/inbox\n" in home_acct
    assert "could not convert: [retriever] type SimpleIMAPSSLRetriever" in out
    assert "2 accounts, OK" in c.stderr
    assert len(re.findall(r": could not convert:", c.stdout)) == 3


def raw_subjects(path):
    return [ln.split(b": ", 1)[1].decode() for ln in path.read_bytes().splitlines()
            if ln.startswith(b"Subject: ")]


def test_switch_from_getmail(dovecot, run, tmp):
    """getmail fetched 2 (delete false) through an MDA; convert its rc from
    the default place, import its oldmail file; popsift fetches the new one
    through the same MDA."""
    need("getmail")
    dovecot.add_messages("alice", [msg(i) for i in range(2)])
    gd = tmp / "getmail"
    gd.mkdir()
    out = tmp / "mail.out"
    (gd / "getmailrc").write_text(
        f"[retriever]\ntype = SimplePOP3SSLRetriever\nserver = {dovecot.host}\n"
        f"port = {dovecot.port_ssl}\nusername = alice\n"
        f"password_command = ('/bin/echo', '{dovecot.users['alice']}')\n"
        f"ca_certs = {dovecot.cafile}\n\n"
        "[destination]\ntype = MDA_external\npath = /bin/sh\n"
        f"arguments = (\"-c\", \"cat >> {out}\")\nallow_root_commands = true\n\n"
        "[options]\ndelete = false\nread_all = false\n")
    tool(["getmail", "--getmaildir", str(gd), "--rcfile", "getmailrc"], tmp)
    assert raw_subjects(out) == ["m0", "m1"]
    # the default: every getmailrc* of ~/.config/getmail, else ~/.getmail
    (tmp / ".getmail").symlink_to(gd)
    r, c, cfg = convert_and_check(run, tmp, "getmailrc",
                                  env={"HOME": tmp, "XDG_CONFIG_HOME": None})
    assert "account alice\n" in r.stdout and "keep yes\n" in r.stdout
    assert f"deliver mda /bin/sh -c 'cat >> {out}'\n" in r.stdout
    assert f"password_command /bin/echo {dovecot.users['alice']}\n" in r.stdout
    with open(cfg, "a") as f:
        f.write(f"\ndefaults\nstate {tmp}/state.db\n")
    old = gd / f"oldmail-{dovecot.host}-{dovecot.port_ssl}-alice"
    i = run("-f", cfg, "import", "getmail-oldmail", old, env={"HOME": tmp})
    assert i.returncode == 0 and "2 imported" in i.stdout, i.stderr
    dovecot.add_messages("alice", [msg(2)])
    r = run("-f", cfg, "run", env={"HOME": tmp})
    assert r.returncode == 0, r.stderr
    assert raw_subjects(out) == ["m0", "m1", "m2"]
    assert dovecot.count("alice") == 3


def test_getmailrc_errors(run, tmp):
    (tmp / "bad").write_text("type = x\n")
    r = run("import", "getmailrc", tmp / "bad")
    assert r.returncode == 65 and "bad:1: a key before any [section]" in r.stderr
    (tmp / "imap").write_text("[retriever]\ntype = SimpleIMAPRetriever\n")
    r = run("import", "getmailrc", tmp / "imap")
    assert r.returncode == 65 and "no POP3 account to convert" in r.stderr
    r = run("import", "getmailrc", env={"HOME": tmp, "XDG_CONFIG_HOME": None})
    assert r.returncode == 66 and "no getmail rc file" in r.stderr
