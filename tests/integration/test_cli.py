"""The command line (issue 17): --help, help COMMAND, --version, usage
errors (exit 64 with a message on stderr), and the built-in usage agreeing
with the manual's SYNOPSIS and with each command's own usage."""

import re

import pytest

import popsift_test as pt

MAN1 = pt.REPO_ROOT / "doc" / "popsift.1"
VERSION_H = pt.REPO_ROOT / "src" / "version.h"


def run(*args, **kw):
    return pt.run_popsift(args, **kw)


def entries(lines):
    """Synopsis lines -> one string per command form: a line that starts
    with `popsift` starts one, the others continue it; white space
    collapsed."""
    out = []
    for ln in lines:
        ln = ln.strip()
        if not ln:
            continue
        if ln.startswith("popsift"):
            out.append(ln)
        else:
            out[-1] += " " + ln
    return [re.sub(r"\s+", " ", e) for e in out]


def usage_entries(text):
    lines = [ln[len("usage: "):] if ln.startswith("usage: ") else ln
             for ln in text.splitlines()]
    end = lines.index("") if "" in lines else len(lines)
    return entries(lines[:end])


def man_synopsis():
    """The SYNOPSIS of popsift.1 as plain text: font escapes, \\- and the
    quoted indents of continuation lines dropped."""
    text = MAN1.read_text()
    body = text.split(".SH SYNOPSIS\n", 1)[1].split(".SH ", 1)[0]
    lines = []
    for ln in body.splitlines():
        if ln in (".nf", ".fi"):
            continue
        ln = re.sub(r'^\.B\s+("\s*")?', "", ln)
        ln = re.sub(r"\\f[BIRP]", "", ln).replace("\\-", "-")
        lines.append(ln)
    return entries(lines)


def test_usage_matches_manual_synopsis():
    r = run("--help")
    assert r.returncode == 0 and r.stderr == "", r
    assert usage_entries(r.stdout) == man_synopsis()


@pytest.mark.parametrize("cmd", ["run", "new", "daemon", "check", "status", "log", "filter",
                                 "import", "providers", "authorize", "help"])
def test_each_command_help_is_its_part_of_the_usage(cmd):
    all_usage = usage_entries(run("--help").stdout)
    for args in ([cmd, "--help"], ["help", cmd], [cmd, "-h"]):
        r = run(*args)
        assert r.returncode == 0 and r.stderr == "", (args, r)
        mine = usage_entries(r.stdout)
        assert mine and all(e in all_usage for e in mine), (args, mine)
        assert all(f" {cmd}" in e or e.startswith(f"popsift {cmd}") for e in mine), mine


@pytest.mark.parametrize("args,cmd", [
    (["import"], "import"), (["import", "nosuchkind", "x"], "import"),
    (["filter"], "filter"), (["filter", "--bogus"], "filter"),
    (["providers", "a", "b"], "providers"),
])
def test_own_usage_of_commands_is_the_builtin_one(args, cmd):
    """filter, import and providers check their own arguments: the usage
    they print on a mistake is the built-in one for that command."""
    r = run(*args)
    assert r.returncode == 64, r
    mine = usage_entries(r.stderr[r.stderr.index("usage: "):])
    assert mine == usage_entries(run("help", cmd).stdout)


def test_version():
    want = re.search(r'POPSIFT_VERSION "([^"]+)"', VERSION_H.read_text()).group(1)
    r = run("--version")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == f"popsift {want}"
    assert re.fullmatch(r"libcurl \S+, PCRE2 .+, SQLite \S+", lines[1]), lines


def test_help_unknown_command_is_a_usage_error():
    r = run("help", "frobnicate")
    assert r.returncode == 64 and r.stdout == ""
    assert 'no command "frobnicate"' in r.stderr


# --------------------------------------------------------------------------
# usage errors: exit 64, a message naming the mistake, nothing on stdout

@pytest.fixture
def cfg(tmp):
    text = (f"defaults\nstate {tmp}/state.db\n\naccount work\nhost 127.0.0.1\nport 1\n"
            f"user u\npassword p\ndeliver mbox {tmp}/inbox.mbox\n")
    return pt.write_config(tmp / "config", text)


USAGE_ERRORS = [
    (["status", "nosuch"], 'no account "nosuch"'),
    (["log", "nosuch"], 'no account "nosuch"'),
    (["run", "nosuch"], 'no account "nosuch"'),
    (["new", "nosuch"], 'no account "nosuch"'),
    (["authorize", "nosuch"], 'no account "nosuch"'),
    (["log", "--since", "garbage"], '--since "garbage"'),
    (["log", "--since", "2x"], '--since "2x"'),
    (["log", "--since", "-3d"], '--since "-3d"'),
    (["log", "--since"], "--since needs a value"),
    (["-f"], "-f needs a value"),
    (["status", "work", "extra"], 'unexpected "extra"'),
    (["log", "work", "extra"], 'unexpected "extra"'),
    (["daemon", "extra"], 'unexpected "extra"'),
    (["check", "extra"], 'unexpected "extra"'),
    (["authorize"], "needs an account"),
    (["authorize", "work", "extra"], 'unexpected "extra"'),
    (["help", "run", "extra"], 'unexpected "extra"'),
    (["status", "--all"], "status takes no --all"),
    (["status", "--since", "2d"], "status takes no --since"),
    (["daemon", "--json"], "daemon takes no --json"),
    (["check", "--dry-run"], "check takes no --dry-run"),
    (["new", "--all"], "new takes no --all"),
    (["run", "--since", "2d"], "run takes no --since"),
    (["run", "--frob"], "unknown option --frob"),
    (["frobnicate"], 'no command "frobnicate"'),
    ([], "no command given"),
    (["import", "fetchids", "/nonexistent/x", "nosuch"], None),
]


@pytest.mark.parametrize("args,msg", USAGE_ERRORS, ids=[" ".join(a) or "none" for a, _ in USAGE_ERRORS])
def test_usage_errors_exit_64(cfg, tmp, args, msg):
    r = run("-f", cfg, *args)
    if args[:1] == ["import"]:
        # the file is checked first (66); with a real file the account name decides
        f = tmp / "fetchids"
        f.write_text("u@127.0.0.1 abc\n")
        r = run("-f", cfg, "import", "fetchids", f, "nosuch")
        msg = 'no account "nosuch"'
    assert r.returncode == 64, r
    assert r.stdout == "", r.stdout
    assert msg in r.stderr, r.stderr
    assert not (tmp / "state.db").exists()


def test_good_since_values_are_accepted(cfg):
    for since in ("2d", "12h", "30m", "1w", "3600", "2026-11-01"):
        r = run("-f", cfg, "log", "--since", since)
        assert r.returncode == 0, (since, r.stderr)


def test_status_of_a_known_account_is_fine(cfg):
    r = run("-f", cfg, "status", "work")
    assert r.returncode == 0, r.stderr
