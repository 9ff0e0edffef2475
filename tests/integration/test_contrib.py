"""contrib/: shell completion, systemd user units, log rotation, make install.

    test_bash_completion           contrib/popsift.bash: commands, options,
                                   accounts from -f FILE or the XDG config
    test_zsh_completion            contrib/_popsift under zsh with the
                                   completion builtins stubbed (zsh -n too)
    test_units_verify              systemd-analyze --user verify of every unit
    test_units_agree               daemon unit: reload by HUP to $MAINPID, no
                                   restart on 78/64 (and the daemon does exit
                                   78 on a broken config); run unit: 75 is
                                   success; rotation reaches only the user's
                                   own daemon, never pkill
    test_logrotate_user_config     popsift.logrotate rotates ~/.local/state/
                                   popsift/popsift.log as the user
    test_make_install              binary, manuals, completions and units with
                                   ExecStart under PREFIX, in DESTDIR

zsh: from PATH, or $POPSIFT_ZSH (tests/deps.sh installs it).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import popsift_test as pt  # noqa: E402

REPO = pt.REPO_ROOT
CONTRIB = REPO / "contrib"
UNITS = ["popsift.service", "popsift-run.service", "popsift-run.timer",
         "popsift-logrotate.service", "popsift-logrotate.timer"]
COMMANDS = "run daemon check new filter status log import providers authorize help".split()


@pytest.fixture
def confs(tmp_path):
    """A config given with -f, and an XDG one, each with accounts."""
    cfg = tmp_path / "cfg"
    cfg.write_text("defaults\nkeep yes\naccount work\nhost x\n"
                   "  account   home  # comment\naccount\n")
    xdg = tmp_path / "xdg"
    (xdg / "popsift").mkdir(parents=True)
    (xdg / "popsift" / "config").write_text("account xdg1\n")
    home = tmp_path / "home"
    (home / ".config" / "popsift").mkdir(parents=True)
    (home / ".config" / "popsift" / "alt").write_text("account tilde\n")
    return {"cfg": str(cfg), "xdg": str(xdg), "home": str(home)}


def _cases(c):
    """(words on the line, the last being completed) -> expected set."""
    cfg = c["cfg"]
    return [
        (["popsift", ""], set(COMMANDS)),
        (["popsift", "n"], {"new"}),
        (["popsift", "-"], {"-f", "-v", "-vv", "-q", "--help", "--version"}),
        (["popsift", "run", ""], {"xdg1"}),
        (["popsift", "-f", cfg, "run", ""], {"work", "home"}),
        (["popsift", "-f", cfg, "run", "--"], {"--all", "--dry-run", "--json", "--shard"}),
        (["popsift", "-f", cfg, "new", ""], {"work", "home"}),
        (["popsift", "new", "--"], {"--json"}),
        (["popsift", "-f", cfg, "status", "h"], {"home"}),
        (["popsift", "-f", cfg, "status", "home", ""], set()),
        (["popsift", "-f", cfg, "log", "--since", "2d", ""], {"work", "home"}),
        (["popsift", "log", "--since", ""], {"1h", "1d", "2d", "7d", "30d"}),
        (["popsift", "-f", cfg, "authorize", "w"], {"work"}),
        (["popsift", "import", ""], {"fetchmailrc", "mpoprc", "getmailrc", "fetchids",
                                     "mpop-uidls", "getmail-oldmail"}),
        (["popsift", "-f", cfg, "import", "fetchids", "/x", ""], {"work", "home"}),
        (["popsift", "providers", "g"], {"gmail"}),
        (["popsift", "help", "st"], {"status"}),
        (["popsift", "filter", "--"], {"--dry-run", "--account", "--deliver", "--mbox",
                                       "--maildir"}),
        (["popsift", "-f", cfg, "filter", "--account", ""], {"work", "home"}),
        (["popsift", "-f", "~/.config/popsift/alt", "run", ""], {"tilde"}),
    ]


def _env(c):
    env = dict(os.environ)
    env.update(HOME=c["home"], XDG_CONFIG_HOME=c["xdg"])
    return env


def _tilde_env(c, words, env):
    # the ~ case reads $HOME/.config/popsift/alt, XDG must not matter
    if "~/.config/popsift/alt" in words:
        env = dict(env, XDG_CONFIG_HOME="")
    return env


def test_bash_completion(confs):
    script = ('source "$1"; shift; COMP_WORDS=("$@"); '
              'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _popsift; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    bad = []
    for words, want in _cases(confs):
        env = _tilde_env(confs, words, _env(confs))
        p = subprocess.run(["bash", "-c", script, "bash", str(CONTRIB / "popsift.bash"), *words],
                           capture_output=True, text=True, env=env, timeout=60)
        got = set(p.stdout.split())
        if p.returncode != 0 or got != want:
            bad.append(f"{words[1:]}: got {sorted(got)} want {sorted(want)} {p.stderr}")
    assert not bad, "\n".join(bad)
    # registered for the popsift command
    p = subprocess.run(["bash", "-c", 'source "$1"; complete -p popsift', "bash",
                        str(CONTRIB / "popsift.bash")], capture_output=True, text=True)
    assert "-F _popsift popsift" in p.stdout


def _zsh():
    z = os.environ.get("POPSIFT_ZSH") or shutil.which("zsh")
    assert z, "zsh is not installed: run sh tests/deps.sh (it lists zsh)"
    return z


# compadd, _describe, _files, _message print what they were given, so the
# completion function runs outside zle as it would inside.
_ZSH_STUBS = r'''
compadd() {
  if [[ $1 == -a ]]; then print -rl -- ${(P)2}; return; fi
  [[ $1 == -- ]] && shift
  print -rl -- "$@"
}
_describe() { print -rl -- ${(@)${(P@)4}%%:*} }
_files() { print -r -- "<files $*>" }
_message() { print -r -- "<message>" }
source $1 >/dev/null 2>&1
shift
words=("$@"); CURRENT=$#words
_popsift
'''


def test_zsh_completion(confs, tmp_path):
    z = _zsh()
    p = subprocess.run([z, "-n", str(CONTRIB / "_popsift")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert (CONTRIB / "_popsift").read_text().startswith("#compdef popsift\n")
    stub = tmp_path / "stub.zsh"
    stub.write_text(_ZSH_STUBS)
    cases = _cases(confs) + [
        (["popsift", "import", "mpoprc", ""], {"<files >"}),
        (["popsift", "filter", "--maildir", ""], {"<files -/>"}),
    ]
    bad = []
    for words, want in cases:
        env = _tilde_env(confs, words, _env(confs))
        p = subprocess.run([z, "-f", str(stub), str(CONTRIB / "_popsift"), *words],
                           capture_output=True, text=True, env=env, timeout=60)
        # zsh itself keeps the candidates that match the word so far
        got = {w for w in p.stdout.splitlines() if w.startswith(words[-1]) or w.startswith("<")}
        if p.returncode not in (0, 1) or got != want or p.stderr:
            bad.append(f"{words[1:]}: got {sorted(got)} want {sorted(want)} rc={p.returncode} "
                       f"{p.stderr}")
    assert not bad, "\n".join(bad)


def _unit_copies(tmp_path):
    """The units with ExecStart pointing at the binary under test."""
    d = tmp_path / "units"
    d.mkdir()
    for u in UNITS:
        text = (CONTRIB / u).read_text()
        (d / u).write_text(text.replace("/usr/local/bin/popsift", str(pt.popsift_path())))
    return d


def test_units_verify(tmp_path):
    sa = shutil.which("systemd-analyze")
    assert sa, "systemd-analyze missing (package systemd)"
    d = _unit_copies(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run_dir))
    p = subprocess.run([sa, "--user", "--man=no", "verify", *[str(d / u) for u in UNITS]],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0 and not p.stderr.strip(), p.stdout + p.stderr


def _directives(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_units_agree(tmp_path):
    daemon = _directives((CONTRIB / "popsift.service").read_text())
    assert daemon["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert daemon["Restart"] == "on-failure"
    assert {"64", "78"} <= set(daemon["RestartPreventExitStatus"].split())
    # ... which is what the daemon exits with on a broken config
    cfg = pt.write_config(tmp_path / "bad", "account x\nno_such_key 1\n")
    r = pt.run_popsift(["-f", cfg, "daemon"], env={"HOME": tmp_path}, timeout=60)
    assert r.returncode == 78, (r.returncode, r.stderr)

    run = _directives((CONTRIB / "popsift-run.service").read_text())
    assert run["Type"] == "oneshot" and "75" in run["SuccessExitStatus"].split()

    rot = (CONTRIB / "popsift.logrotate").read_text()
    code = "\n".join(l for l in rot.splitlines() if not l.lstrip().startswith("#"))
    assert "pkill" not in code and "killall" not in code
    assert "/var/log" not in code
    assert "~/.local/state/popsift/popsift.log {" in code
    assert "systemctl --user reload popsift.service" in code
    lr = _directives((CONTRIB / "popsift-logrotate.service").read_text())
    assert "%E/popsift/logrotate.conf" in lr["ExecStart"]
    assert "%S/popsift/logrotate.state" in lr["ExecStart"]
    assert "~/.config/popsift/logrotate.conf" in rot   # where its comment says to copy it


def test_logrotate_user_config(tmp_path):
    lr = shutil.which("logrotate") or "/usr/sbin/logrotate"
    assert Path(lr).exists(), "logrotate missing"
    logdir = tmp_path / ".local" / "state" / "popsift"
    logdir.mkdir(parents=True, mode=0o700)
    (logdir / "popsift.log").write_text("a line\n")
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env.pop("XDG_RUNTIME_DIR", None)
    p = subprocess.run([lr, "-f", "--state", str(tmp_path / "lr.state"),
                        str(CONTRIB / "popsift.logrotate")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""   # no daemon to reload: postrotate stays quiet
    assert (logdir / "popsift.log.1").read_text() == "a line\n"
    assert not (logdir / "popsift.log").exists()


def test_make_install(tmp_path):
    dest = tmp_path / "dest"
    p = subprocess.run(["make", "-C", str(REPO), "install", f"DESTDIR={dest}", "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=1800, env=pt.plain_make_env())
    assert p.returncode == 0, p.stdout + p.stderr
    want = ["usr/bin/popsift", "usr/share/man/man1/popsift.1",
            "usr/share/man/man5/popsift.conf.5", "usr/share/man/man5/popsift.rules.5",
            "usr/share/bash-completion/completions/popsift",
            "usr/share/zsh/vendor-completions/_popsift"]
    want += [f"usr/lib/systemd/user/{u}" for u in UNITS]
    missing = [w for w in want if not (dest / w).is_file()]
    assert not missing, missing
    for u in ("popsift.service", "popsift-run.service"):
        text = (dest / "usr/lib/systemd/user" / u).read_text()
        assert "ExecStart=/usr/bin/popsift " in text and "/usr/local" not in text
    assert os.stat(dest / "usr/bin/popsift").st_mode & 0o777 == 0o755
