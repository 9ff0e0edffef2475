#!/usr/bin/python3
"""demo.py — what `make demo` shows (run by tests/demo.sh from the repo root, as root).

Starts a throwaway Dovecot on loopback ports, loads the demo mail (7
messages for alice, 5 for bob), writes an example config with two
accounts (personal: mbox, keep no; work: Maildir, keep yes; both over
POP3S trusting the throwaway CA), runs `popsift -f CONFIG run`, shows what
landed where and what is left on the server, runs popsift again to show
nothing is fetched twice, and stops the server.  The config, the CA, the mbox,
the Maildir and the state database stay in tests/out/demo/ for a look.
"""

import email.header
import email.utils
import os
import shutil
import signal
import subprocess
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popsift_test as pt  # noqa: E402

OUT = pt.REPO_ROOT / "tests" / "out" / "demo"


def say(*a):
    print(*a, flush=True)


def rel(p: Path) -> str:
    try:
        return str(Path(p).relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def sender(msg: bytes) -> str:
    v = pt.header_values(msg, "From")
    if not v:
        return ""
    try:
        v0 = str(email.header.make_header(email.header.decode_header(v[0])))
    except Exception:
        v0 = v[0]
    name, addr = email.utils.parseaddr(v0)
    return name or addr


def pad(text: str, width: int) -> str:
    """text cut/padded to `width` terminal columns (CJK is two columns)."""
    out, w = "", 0
    for ch in text:
        cw = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if w + cw > width:
            break
        out += ch
        w += cw
    return out + " " * (width - w)


def show(title: str, msgs: list[bytes]) -> None:
    say(f"{title}: {len(msgs)} message{'s' if len(msgs) != 1 else ''}")
    for m in msgs:
        say(f"    {pad(pt.decoded_subject(m), 50)}  ({sender(m)})")


CHILD: subprocess.Popen | None = None


def run_popsift(binary: Path, cfg: Path) -> int:
    global CHILD
    cmd = [str(binary), "-f", str(cfg), "run"]
    shown = rel(binary)
    if "/" not in shown:
        shown = "./" + shown
    say(f"$ {shown} -f {rel(cfg)} run")
    CHILD = subprocess.Popen(cmd)
    try:
        return CHILD.wait()
    finally:
        if CHILD.poll() is None:      # interrupted: do not leave it behind
            CHILD.terminate()
            CHILD.wait()
        CHILD = None


def main() -> int:
    binary = pt.popsift_path()
    if not binary.is_file():
        say(f"demo: {binary} is not built; run: make demo")
        return 1
    if os.geteuid() != 0:
        say("demo: must run as root (it starts a throwaway Dovecot that drops privileges)")
        return 1

    # SIGTERM/SIGHUP: unwind through the finally blocks (server stopped)
    def die(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, die)
    signal.signal(signal.SIGHUP, die)

    gen = pt.load_genmail()
    personal, work = gen.demo_messages("personal"), gen.demo_messages("work")

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    mbox, maildir, state, cfg = OUT / "personal.mbox", OUT / "work", OUT / "state.db", OUT / "config"
    rules, invoices, lists = OUT / "personal.rules", OUT / "invoices.mbox", OUT / "lists"

    say("== starting a throwaway Dovecot (POP3 + POP3S on 127.0.0.1)")
    with pt.Dovecot(users={"alice": "secret", "bob": "secret"}) as dc:
        dc.add_messages("alice", personal)
        dc.add_messages("bob", work)
        cafile = OUT / "ca.pem"
        shutil.copyfile(dc.cafile, cafile)
        say(f"   POP3S on 127.0.0.1:{dc.port_ssl}, POP3 on 127.0.0.1:{dc.port}; "
            f"certificate signed by a throwaway CA ({rel(cafile)})")
        say(f"   mailboxes: alice {dc.count('alice')} messages, bob {dc.count('bob')} messages")

        rules_text = f"""\
# personal.rules: the first rule that matches decides; the rest go to `deliver`
match header "Subject" =~ /\\[SPAM\\]/i                  discard
match header "List-Id" =~ /<([a-z0-9-]+)\\./          maildir {lists}/$1
match header "Subject" =~ /发票|invoice/i              mbox {invoices}
"""
        rules.write_text(rules_text)
        say(f"\n== the rules ({rel(rules)})")
        for line in rules_text.splitlines():
            say(f"   {line}")

        text = f"""\
# popsift example config, written by `make demo` (tests/lib/demo.py).
# Keys under `defaults` are inherited by the accounts below.
defaults
host 127.0.0.1
port {dc.port_ssl}
tls on
tls_ca_file {cafile}
auth any
state {state}

# a personal mailbox: fetched into an mbox and removed from the server
account personal
user alice
password secret
keep no
rules {rules}
deliver mbox {mbox}

# a work mailbox: fetched into a Maildir, left on the server
account work
user bob
password secret
keep yes
deliver maildir {maildir}
"""
        pt.write_config(cfg, text, 0o600)
        say(f"\n== the config ({rel(cfg)}, mode 0600 since it holds passwords)")
        for line in text.splitlines():
            say(f"   {line}")

        say("\n== first run")
        rc = run_popsift(binary, cfg)
        if rc != 0:
            say(f"\ndemo: popsift exited {rc}\n--- Dovecot log (tail):\n{dc.log_tail(20)}")
            return rc

        got_mbox = pt.mbox_messages(mbox)
        got_maildir = pt.maildir_messages(maildir)
        say("\n== what landed where")
        got_inv = pt.mbox_messages(invoices) if invoices.exists() else []
        got_lists = [m for d in sorted(lists.glob("*")) for m in pt.maildir_messages(d)]
        show(f"personal -> mbox {rel(mbox)}", got_mbox)
        show(f"personal -> invoices {rel(invoices)}", got_inv)
        show(f"personal -> lists {rel(lists)}/*", got_lists)
        say("personal: [SPAM] discarded (deleted from the server, delivered nowhere)")
        show(f"work     -> Maildir {rel(maildir)}", got_maildir)
        left = {u: dc.count(u) for u in ("alice", "bob")}
        say(f"left on the server: alice {left['alice']} (keep no), bob {left['bob']} (keep yes)")

        say("\n== second run: nothing is fetched twice")
        rc = run_popsift(binary, cfg)
        if rc != 0:
            say(f"\ndemo: popsift exited {rc} on the second run\n"
                f"--- Dovecot log (tail):\n{dc.log_tail(20)}")
            return rc
        n_mbox2, n_maildir2 = len(pt.mbox_messages(mbox)), len(pt.maildir_messages(maildir))
        say(f"mbox still {n_mbox2}, Maildir still {n_maildir2}; "
            f"server: alice {dc.count('alice')}, bob {dc.count('bob')}")

        problems = []
        if (len(got_mbox), len(got_inv), len(got_lists)) != (len(personal) - 3, 1, 1):
            problems.append(f"personal: inbox {len(got_mbox)}, invoices {len(got_inv)}, "
                            f"lists {len(got_lists)}; expected {len(personal) - 3}, 1, 1")
        if len(got_maildir) != len(work):
            problems.append(f"Maildir has {len(got_maildir)} messages, expected {len(work)}")
        if left != {"alice": 0, "bob": len(work)}:
            problems.append(f"left on server {left}, expected alice 0, bob {len(work)}")
        if (n_mbox2, n_maildir2) != (len(got_mbox), len(got_maildir)):
            problems.append("the second run delivered again")
        say("\n== stopping Dovecot")
    say(f"   done; the config, mbox, Maildir and state are in {rel(OUT)}/")
    if problems:
        for p in problems:
            say(f"demo: unexpected: {p}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
