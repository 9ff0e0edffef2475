"""Issue 13: message data never reaches a shell.  An expansion ($1,
${header:...}) inside the script of `sh -c` is refused at `check` and at
load (exit 78) with the safe form in the message; the safe form passes
the expansion as an argument after the script, where a sender's $(...)
and backticks stay text."""

import subprocess

import popsift_test as pt

HOSTILE = "x $(touch pwned1) `touch pwned2` ; touch pwned3 ' \" $HOME"


def run_in(cwd, *args, input=None):
    return subprocess.run([str(pt.popsift_path()), *map(str, args)], cwd=cwd, input=input,
                          capture_output=True, timeout=120)


def pwned(tmp):
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("pwned"))


def test_unsafe_shell_forms_are_refused_at_check(tmp, dovecot, config):
    for action in ['mda /bin/sh -c "procmail -m LIST=$1"',
                   "mda bash -e -o pipefail -c 'deliver ${header:Subject}'",
                   'mda busybox sh -c "echo $1"',
                   'mda /usr/bin/python3 -c $1',
                   'mda $1',
                   'mda env $1=x /bin/sh -c true']:
        rules = tmp / "r.rules"
        rules.write_text(f'match header "List-Id" =~ /<([^>]*)>/ {action}\n')
        cfg = config(rules=rules)
        r = run_in(tmp, "-f", cfg, "check")
        assert r.returncode == 78, (action, r.stderr)
        assert b"r.rules:1:" in r.stderr and b"would let a sender" in r.stderr, r.stderr
        if b"inside the script" in r.stderr:
            assert b"\"$$1\"" in r.stderr and b"sh $1" in r.stderr or \
                b"sh ${header:Subject}" in r.stderr, r.stderr
        r = run_in(tmp, "-f", cfg, "run")
        assert r.returncode == 78, r.stderr
    assert dovecot.count("alice") == 0


def test_safe_forms_keep_hostile_text_as_text(tmp, dovecot, config):
    out1, out2 = tmp / "list.txt", tmp / "subject.txt"
    rules = tmp / "r.rules"
    rules.write_text(
        'match header "List-Id" =~ /<(.*)>/ '
        f"mda /bin/sh -c 'printf \"%s\\\\n\" \"$$1\" \"$$2\" > {out1}; cat >/dev/null' "
        "sh $1 ${header:Subject}\n"
        'match all '
        f"mda env SUBJ=${{header:Subject}} /bin/sh -c 'printf \"%s\\\\n\" \"$$SUBJ\" > {out2}; "
        "cat >/dev/null'\n")
    dovecot.add_message("alice", (f"From: a@example.org\nSubject: {HOSTILE}\n"
                                  f"List-Id: <{HOSTILE}>\n\nbody\n").encode())
    dovecot.add_message("alice", f"From: a@example.org\nSubject: {HOSTILE}\n\nb\n".encode())
    cfg = config(rules=rules)
    assert run_in(tmp, "-f", cfg, "check").returncode == 0
    r = run_in(tmp, "-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert pwned(tmp) == [], "a sender's command ran"
    assert out1.read_text() == f"{HOSTILE}\n{HOSTILE}\n", "each expansion is one argument, as is"
    assert out2.read_text() == f"{HOSTILE}\n"
    assert dovecot.count("alice") == 0
