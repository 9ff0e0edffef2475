"""Integration tests for issue 5, operations side: `popsift status`
(text and --json), `popsift log` (per-message history, --since, --json),
`keep 30d` / `delete_after 30d` retention by first-seen time in SQLite,
and contrib/ (systemd units through `systemd-analyze verify`, the crontab
line, the logrotate snippet).

The daemon itself (scheduler, signals, locks, log FILE): test_daemon.py

Run:  /usr/bin/python3 -m pytest -q tests/integration/test_daemon_ops.py
"""

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

import popsift_test as pt

CONTRIB = pt.REPO_ROOT / "contrib"
INSTALLED = "/usr/local/bin/popsift"   # the path the contrib files use

# Dovecot delays every login from an IP after a refused one (anvil's auth
# penalty, for all users from that IP): off, so one refused account does
# not slow the others down by seconds.
NO_AUTH_PENALTY = "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"


def mkmsg(tag: str, subject: str | None = None, body: bytes = b"Hello.\n") -> tuple[bytes, str]:
    mid = f"<{tag}.{uuid.uuid4().hex}@ops.test>"
    msg = (f"From: Sender <sender@example.com>\n"
           f"To: alice@example.org\n"
           f"Subject: {subject or tag}\n"
           f"Date: Fri, 01 Mar 2024 09:00:00 +0000\n"
           f"Message-ID: {mid}\n\n").encode() + body
    return msg, mid


SAFETY = 30   # s: a deadline that only stops a hung test


def wait_until(pred, what: str, timeout: float = SAFETY):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def message_ids(path) -> list[str]:
    out = []
    for m in pt.mbox_messages(path):
        v = pt.header_values(m, "Message-ID")
        out.append(v[0] if v else "")
    return out


def server_ids(dc, user) -> list[str]:
    return [pt.header_values(m, "Message-ID")[0] for m in dc.messages(user)]


def config_text(defaults: dict, *accounts: str) -> str:
    head = "defaults\n" + "".join(f"{k} {v}\n" for k, v in defaults.items()) + "\n"
    return head + "\n".join(accounts)


@pytest.fixture
def dovecot3(make_dovecot):
    return make_dovecot(users={"alice": "secret", "bob": "secret", "carol": "secret"},
                        extra_conf=NO_AUTH_PENALTY)


@pytest.fixture
def three_accounts(dovecot3, tmp):
    """Config with accounts good (alice: 2 messages), bad (bob, wrong
    password) and mda (carol: a message its MDA refuses), after one run."""
    dc = dovecot3
    m1, id1 = mkmsg("inv", subject="=?UTF-8?B?5Y+R56WoIGludm9pY2U=?=")   # 发票 invoice
    m2, id2 = mkmsg("plain", subject="plain one")
    m3, id3 = mkmsg("refused", subject="will fail")
    dc.add_messages("alice", [m1, m2])
    dc.add_message("carol", m3)
    cfg = pt.write_config(tmp / "config", config_text(
        {"state": tmp / "state.db"},
        pt.account_config(dc, "alice", name="good", deliver=f"mbox {tmp}/inbox.mbox"),
        pt.account_config(dc, "bob", name="bad", password="nope",
                          deliver=f"mbox {tmp}/inbox.mbox"),
        pt.account_config(dc, "carol", name="mda", deliver="mda /bin/false")))
    r = pt.run_popsift(["-f", cfg, "run"])
    assert r.returncode == 77, r.stderr   # the worst: authentication refused
    return cfg, {"inv": id1, "plain": id2, "refused": id3}


def sections(text: str) -> dict[str, str]:
    """`popsift status` text: account name (a line at column 0) -> its block."""
    out, cur = {}, None
    for ln in text.splitlines():
        if ln and not ln[0].isspace():
            cur = ln.strip()
            out[cur] = ""
        elif cur is not None:
            out[cur] += ln + "\n"
    return out


# --------------------------------------------------------------------------
# status

def test_status_shows_last_run_and_errors(three_accounts, run):
    cfg, _ = three_accounts
    r = run("-f", cfg, "status")
    assert r.returncode == 0, r.stderr
    s = sections(r.stdout)
    assert set(s) == {"good", "bad", "mda"}, r.stdout
    assert re.search(r"last run\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: exit 0, 2 new, 2 delivered, "
                     r"2 deleted\n", s["good"]), s["good"]
    assert "error" not in s["good"]
    assert re.search(r"exit 77, .*error: login refused for user bob", s["bad"]), s["bad"]
    assert re.search(r"exit 75, 1 new, 0 delivered.*error: ", s["mda"]), s["mda"]
    # the message left on the server, with why
    assert re.search(r"not delivered\s+\S+\s+will fail: /bin/false exited with 1", s["mda"]), \
        s["mda"]
    stamp = re.search(r"last run\s+(\S+ \S+):", s["good"]).group(1)
    assert abs(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").timestamp() - time.time()) < 60

    r = run("-f", cfg, "status", "bad")
    assert r.returncode == 0
    assert set(sections(r.stdout)) == {"bad"}, r.stdout


def test_status_json(three_accounts, run):
    cfg, _ = three_accounts
    r = run("-f", cfg, "status", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    acc = {a["account"]: a for a in doc["accounts"]}
    assert set(acc) == {"good", "bad", "mda"}
    assert acc["good"]["last_exit"] == 0 and not acc["good"]["last_error"]
    assert acc["good"]["deleted"] == 2
    assert acc["bad"]["last_exit"] == 77
    assert "login refused" in acc["bad"]["last_error"]
    assert acc["mda"]["last_exit"] == 75 and acc["mda"]["failed"] == 1
    for a in acc.values():
        datetime.strptime(a["last_run"], "%Y-%m-%d %H:%M:%S")

    r = run("-f", cfg, "status", "--json", "good")
    assert [a["account"] for a in json.loads(r.stdout)["accounts"]] == ["good"]

    # a second run replaces "last run"; the error of 'bad' stays until it works
    r = run("-f", cfg, "run", "good")
    assert r.returncode == 0
    acc = {a["account"]: a for a in json.loads(run("-f", cfg, "status", "--json").stdout)
           ["accounts"]}
    assert acc["good"]["last_exit"] == 0
    assert acc["bad"]["last_exit"] == 77


def test_status_and_log_do_not_wait_for_the_daemon(dovecot, popsift, run, tmp):
    """status and log only read SQLite: they must not wait for the lock the
    daemon holds (lock_wait 60 is the default)."""
    m, mid = mkmsg("while-daemon")
    dovecot.add_message("alice", m)
    cfg = pt.write_config(tmp / "config", config_text(
        {"state": tmp / "state.db"},
        pt.account_config(dovecot, "alice", name="test", interval=60,
                          deliver=f"mbox {tmp}/inbox.mbox")))
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "daemon"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # the daemon's poll committed (its history lists the message); from
        # then on it holds the lock, idle (interval 60)
        wait_until(lambda: mid in run("-f", cfg, "log", timeout=SAFETY).stdout,
                   "the daemon's delivery in the history")
        assert message_ids(tmp / "inbox.mbox") == [mid]
        for args in (("status",), ("status", "--json"), ("log",), ("log", "--json")):
            t = time.monotonic()
            r = run("-f", cfg, *args, timeout=SAFETY * 3)
            assert r.returncode == 0, (args, r.stderr)
            # lock_wait is 60 s: anything near it was a wait for the lock
            assert time.monotonic() - t < 20, f"{args} waited for the daemon's lock"
            assert "test" in r.stdout
        assert mid in r.stdout
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            assert p.wait(timeout=SAFETY) == 0
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_status_shows_today_and_next_poll(dovecot, popsift, run, tmp):
    """Issue 5: status shows per account messages/bytes today and total, and
    the next poll while the daemon runs."""
    dovecot.add_message("alice", mkmsg("today")[0])
    cfg = pt.write_config(tmp / "config", config_text(
        {"state": tmp / "state.db"},
        pt.account_config(dovecot, "alice", name="test", interval=600,
                          deliver=f"mbox {tmp}/inbox.mbox")))
    p = subprocess.Popen([str(popsift), "-f", str(cfg), "daemon"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # the first poll done (its run row written, the daemon waiting for
        # the next one): then status has everything to show
        def first_poll_done():   # (an account is listed once it has run)
            acc = json.loads(run("-f", cfg, "status", "--json").stdout)["accounts"]
            return acc and acc[0].get("daemon_state") == "waiting" and acc[0].get("last_run")
        wait_until(first_poll_done, "the first poll done")
        assert len(message_ids(tmp / "inbox.mbox")) == 1
        text = run("-f", cfg, "status").stdout
        doc = json.loads(run("-f", cfg, "status", "--json").stdout)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=SAFETY)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert re.search(r"today", text, re.I), f"no messages/bytes today in:\n{text}"
    assert re.search(r"next (poll|run)", text, re.I), f"no next poll in:\n{text}"
    keys = " ".join(doc["accounts"][0])
    assert re.search(r"today", keys), f"no 'today' keys in --json: {keys}"
    assert re.search(r"next", keys), f"no next-poll key in --json: {keys}"


# --------------------------------------------------------------------------
# log

LOG_RE = re.compile(r'^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?P<account>\S+) (?P<uidl>\S+) '
                    r'(?P<mid>\S+) "(?P<subject>[^"]*)" (?P<rule>\S+) (?P<action>\S+) '
                    r'(?P<state>\w+)(: (?P<error>.*))?$')


def test_log_lists_per_message_history(three_accounts, run):
    cfg, ids = three_accounts
    r = run("-f", cfg, "log")
    assert r.returncode == 0, r.stderr
    rows = [LOG_RE.match(ln) for ln in r.stdout.splitlines()]
    assert all(rows), r.stdout
    by_mid = {m["mid"]: m for m in rows}
    assert set(by_mid) == set(ids.values()), r.stdout
    inv = by_mid[ids["inv"]]
    assert inv["account"] == "good" and inv["subject"] == "发票 invoice"
    assert inv["state"] == "deleted"    # delivered, then DELE'd (keep no)
    assert by_mid[ids["plain"]]["subject"] == "plain one"
    bad = by_mid[ids["refused"]]
    assert bad["account"] == "mda" and bad["state"] == "failed"
    assert bad["error"] == "/bin/false exited with 1"
    for m in rows:
        assert abs(datetime.strptime(m["when"], "%Y-%m-%d %H:%M:%S").timestamp()
                   - time.time()) < 120

    r = run("-f", cfg, "log", "--json")
    doc = json.loads(r.stdout)
    assert {d["message_id"] for d in doc} == set(ids.values())
    j = {d["message_id"]: d for d in doc}
    assert j[ids["inv"]]["subject"] == "发票 invoice"
    assert j[ids["inv"]]["uidl"] == inv["uidl"]
    assert j[ids["refused"]]["state"] == "failed"
    assert set(doc[0]) >= {"time", "account", "uidl", "message_id", "subject", "rule",
                           "action", "state", "error"}

    # one account; --since
    r = run("-f", cfg, "log", "good")
    assert {LOG_RE.match(ln)["account"] for ln in r.stdout.splitlines()} == {"good"}
    assert len(r.stdout.splitlines()) == 2
    assert len(run("-f", cfg, "log", "--since", "2d").stdout.splitlines()) == 3
    assert len(run("-f", cfg, "log", "--since", "1h").stdout.splitlines()) == 3
    today = date.today().isoformat()
    assert len(run("-f", cfg, "log", "--since", today).stdout.splitlines()) == 3
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    r = run("-f", cfg, "log", "--since", tomorrow)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout
    assert json.loads(run("-f", cfg, "log", "--json", "--since", tomorrow).stdout) == []


def test_log_names_rule_and_action(dovecot, run, tmp):
    rules = tmp / "test.rules"
    rules.write_text('match header "Subject" =~ /\\[SPAM\\]/i   discard\n'
                     f'match all   mbox {tmp}/inbox.mbox\n')
    spam, spam_id = mkmsg("spam", subject="[SPAM] cheap")
    ham, ham_id = mkmsg("ham", subject="lunch")
    dovecot.add_messages("alice", [spam, ham])
    cfg = pt.write_config(tmp / "config", config_text(
        {"state": tmp / "state.db"},
        pt.account_config(dovecot, "alice", name="test", rules=rules, deliver=None)))
    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert message_ids(tmp / "inbox.mbox") == [ham_id]
    doc = {d["message_id"]: d for d in json.loads(run("-f", cfg, "log", "--json").stdout)}
    assert "discard" in doc[spam_id]["action"], doc[spam_id]
    assert "1" in doc[spam_id]["rule"] or "SPAM" in doc[spam_id]["rule"], doc[spam_id]
    assert "mbox" in doc[ham_id]["action"], doc[ham_id]
    text = run("-f", cfg, "log").stdout
    line = next(ln for ln in text.splitlines() if spam_id in ln)
    assert "discard" in line and "[SPAM] cheap" in line, line


# --------------------------------------------------------------------------
# retention

@pytest.mark.parametrize("keys", [{"keep": "30d"}, {"keep": None, "delete_after": "30d"}],
                         ids=["keep-30d", "delete_after-30d"])
def test_retention_deletes_by_first_seen(dovecot, run, tmp, keys):
    msgs = [mkmsg(f"r{i}") for i in range(4)]
    ids = [mid for _, mid in msgs]
    dovecot.add_messages("alice", [m for m, _ in msgs])
    mbox = tmp / "inbox.mbox"
    db = tmp / "state.db"
    cfg = pt.write_config(tmp / "config", config_text(
        {"state": db}, pt.account_config(dovecot, "alice", name="test",
                                         deliver=f"mbox {mbox}", **keys)))
    for _ in range(2):   # delivered once, then left alone: nothing deleted
        r = run("-f", cfg, "run")
        assert r.returncode == 0, r.stderr
        assert message_ids(mbox) == ids
        assert server_ids(dovecot, "alice") == ids
        assert re.search(r"test: \d+ new, \d+ delivered, \d+ kept, 0 deleted", r.stderr), r.stderr

    with sqlite3.connect(db) as con:
        rows = dict(con.execute("SELECT message_id, first_seen FROM messages "
                                "WHERE account='test'").fetchall())
        assert set(rows) == set(ids)
        assert all(abs(v - time.time()) < 120 for v in rows.values()), rows
        day = 86400
        for mid, age in ((ids[0], 31 * day), (ids[1], 31 * day), (ids[2], 29 * day)):
            con.execute("UPDATE messages SET first_seen = first_seen - ? "
                        "WHERE account='test' AND message_id=?", (age, mid))
    con.close()

    r = run("-f", cfg, "run")
    assert r.returncode == 0, r.stderr
    assert server_ids(dovecot, "alice") == ids[2:], "the 31-day-old mail is still on the server"
    assert message_ids(mbox) == ids, "retention re-delivered or lost mail"
    assert re.search(r"test: 0 new, 0 delivered, \d+ kept, 2 deleted", r.stderr), r.stderr
    with sqlite3.connect(db) as con:
        states = dict(con.execute("SELECT message_id, state FROM messages").fetchall())
    con.close()
    assert [states[i] for i in ids] == ["deleted", "deleted", "delivered", "delivered"]

    # stable afterwards
    r = run("-f", cfg, "run")
    assert r.returncode == 0
    assert server_ids(dovecot, "alice") == ids[2:]
    assert message_ids(mbox) == ids


# --------------------------------------------------------------------------
# contrib/

def contrib_copy(tmp: Path, binary: Path) -> Path:
    """contrib/ copied with the installed path replaced by the built binary."""
    d = tmp / "contrib"
    d.mkdir()
    for f in CONTRIB.iterdir():
        (d / f.name).write_text(f.read_text().replace(INSTALLED, str(binary)))
    return d


def unit(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    cp.optionxform = str
    cp.read_string(path.read_text())
    return cp


def test_contrib_systemd_units(popsift, tmp):
    units = sorted(CONTRIB.glob("*.service")) + sorted(CONTRIB.glob("*.timer"))
    names = {u.name for u in units}
    assert {"popsift.service", "popsift-run.service", "popsift-run.timer"} <= names

    svc, run_svc, timer = (unit(CONTRIB / n) for n in
                           ("popsift.service", "popsift-run.service", "popsift-run.timer"))
    assert svc["Service"]["ExecStart"].split()[-1] == "daemon"
    assert "-HUP" in svc["Service"]["ExecReload"] and "$MAINPID" in svc["Service"]["ExecReload"]
    assert svc["Install"]["WantedBy"] == "default.target"     # a user unit
    assert run_svc["Service"]["Type"] == "oneshot"
    assert shlex.split(run_svc["Service"]["ExecStart"])[-1] == "run"
    assert "75" in run_svc["Service"].get("SuccessExitStatus", "").split()
    assert "Timer" in timer and any(k.startswith("On") for k in timer["Timer"])
    assert timer["Timer"].get("Unit", "popsift-run.service") == "popsift-run.service"
    assert timer["Install"]["WantedBy"] == "timers.target"

    # systemd-analyze verify: a copy pointing at the built binary (it checks
    # that ExecStart= is executable); --user for user units, which needs an
    # XDG_RUNTIME_DIR.  It exits 0 on mere warnings, so stderr must be empty.
    sa = shutil.which("systemd-analyze")
    assert sa, "systemd-analyze not found (Debian: systemd)"
    d = contrib_copy(tmp, popsift)
    rt = tmp / "xdg-runtime"
    rt.mkdir(mode=0o700)
    files = [str(d / u.name) for u in units]
    for mode in ([], ["--user"]):
        r = subprocess.run([sa, *mode, "verify", "--man=no", *files], capture_output=True,
                           text=True, env={**os.environ, "XDG_RUNTIME_DIR": str(rt)}, timeout=60)
        assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", \
            f"systemd-analyze {' '.join(mode)} verify:\n{r.stdout}{r.stderr}"


CRON_FIELDS = [("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
               ("month", 1, 12, {m: i + 1 for i, m in enumerate(
                   "jan feb mar apr may jun jul aug sep oct nov dec".split())}),
               ("day of week", 0, 7, {d: i for i, d in enumerate(
                   "sun mon tue wed thu fri sat".split())})]


def cron_field_ok(text: str, lo: int, hi: int, names: dict) -> bool:
    def val(v):
        v = names.get(v.lower(), v)
        return int(v) if isinstance(v, int) or v.isdigit() else None
    for item in text.split(","):
        rng, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) < 1):
            return False
        if rng == "*":
            continue
        a, _, b = rng.partition("-")
        va, vb = val(a), (val(b) if b else None)
        if va is None or not lo <= va <= hi:
            return False
        if b and (vb is None or not va <= vb <= hi):
            return False
        if step and not b:
            return False
    return True


def test_contrib_crontab_line(popsift, dovecot, tmp):
    entries = [ln for ln in (CONTRIB / "crontab.example").read_text().splitlines()
               if ln.strip() and not ln.lstrip().startswith("#")]
    assert entries, "no crontab entry"
    for ln in entries:
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", ln):
            continue   # an environment line, e.g. MAILTO=
        fields = ln.split(None, 5)
        assert len(fields) == 6, f"not 5 time fields and a command: {ln!r}"
        for text, (what, lo, hi, names) in zip(fields[:5], CRON_FIELDS):
            assert cron_field_ok(text, lo, hi, names), f"bad {what} field {text!r} in {ln!r}"
        cmd = fields[5]
        assert not re.search(r"(?<!\\)%", cmd), "unescaped % in a crontab command"
        argv = shlex.split(cmd)
        assert argv[0] == INSTALLED and "run" in argv, ln

        # the command itself works with the built binary and the default
        # config path, and with -q prints nothing when all is well
        home = tmp / "home"
        (home / ".config" / "popsift").mkdir(parents=True)
        pt.write_config(home / ".config" / "popsift" / "config", pt.account_config(
            dovecot, "alice", name="test", deliver=f"mbox {home}/inbox.mbox"))
        dovecot.add_message("alice", mkmsg("cron")[0])
        env = {**os.environ, "HOME": str(home)}
        env.pop("XDG_CONFIG_HOME", None)
        r = subprocess.run([str(popsift), *argv[1:]], env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "" and r.stderr == "", "cron would mail this:\n" + r.stdout + r.stderr
        assert len(message_ids(home / "inbox.mbox")) == 1
        assert (home / ".local" / "state" / "popsift" / "state.db").exists()


def test_contrib_run_service_command_works(popsift, dovecot, tmp):
    """The ExecStart= of popsift-run.service, run as systemd would (user's
    HOME, default config path): exit 0, mail delivered."""
    argv = shlex.split(unit(CONTRIB / "popsift-run.service")["Service"]["ExecStart"])
    assert argv[0] == INSTALLED
    home = tmp / "home"
    pt.write_config(home / ".config" / "popsift" / "config", pt.account_config(
        dovecot, "alice", name="test", deliver=f"mbox {home}/inbox.mbox"))
    dovecot.add_message("alice", mkmsg("timer")[0])
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    r = subprocess.run([str(popsift), *argv[1:]], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert len(message_ids(home / "inbox.mbox")) == 1


def test_contrib_logrotate_snippet(tmp):
    text = (CONTRIB / "popsift.logrotate").read_text()
    body = "\n".join(ln.split("#", 1)[0].rstrip() for ln in text.splitlines())
    m = re.search(r"^(\S+)\s*\{(.*)^\}", body, re.S | re.M)
    assert m, "no 'PATH { ... }' block"
    assert m.group(1).startswith(("/", "~/"))   # ~: a user's own file (logrotate expands it)
    inner = m.group(2)
    assert inner.count("postrotate") == 1 and inner.count("endscript") == 1
    script = inner.split("postrotate", 1)[1].split("endscript", 1)[0]
    assert re.search(r"-HUP|-s\s*HUP|-1\b|reload", script), "postrotate does not send SIGHUP"
    directives = [ln.split()[0] for ln in inner.split("postrotate")[0].splitlines() if ln.strip()]
    known = {"daily", "weekly", "monthly", "yearly", "rotate", "compress", "delaycompress",
             "missingok", "notifempty", "create", "copytruncate", "size", "maxsize",
             "su", "sharedscripts", "dateext", "nocompress", "minsize", "maxage"}
    assert set(directives) <= known, f"unknown directives {set(directives) - known}"
    lr = shutil.which("logrotate")
    if lr:   # logrotate is not a test dependency; when present it checks too
        conf = tmp / "lr.conf"
        conf.write_text(text.replace(m.group(1), str(tmp / "popsift.log"), 1))
        (tmp / "popsift.log").write_text("x\n")
        r = subprocess.run([lr, "-d", "-s", str(tmp / "lr.state"), str(conf)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stderr
