"""servers — throwaway POP3 servers other than Dovecot, for the
compatibility tests (tests/integration/test_compat.py, doc/compat.md).

Standard library only; must run as root (servers drop privileges to the
mail user of popsift_test, popsift-mail).

    GNU Mailutils pop3d (Debian package mailutils-pop3d)

        with MailutilsPop3d(users={"alice": "secret"}) as mu:
            mu.add_message("alice", b"From: a@example.org\\n...")
            mu.login("alice")        # "alice@example.org": virtual-domain user
            mu.port                  # POP3 on 127.0.0.1, STLS offered (ssl=True)
            mu.cafile                # CA that signed the server certificate

    Users are virtual-domain users (mailutils' `virtdomain` module) of
    domain example.org: one passwd-format file, SHA-512 crypt passwords,
    no PAM, no system account.  Each user's mailbox is an mbox file,
    home/USER/INBOX, owned by popsift-mail.  APOP secrets are kept in a
    GDBM database made with popauth (apop=True).

Other Debian POP3 servers (popa3d, solid-pop3d, courier-pop, cyrus-pop3d)
declare `Conflicts: pop3-server` and cannot be installed next to
dovecot-pop3d: see doc/compat.md.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import popsift_test as pt

__all__ = ["MailutilsPop3d", "ServerError", "mbox_quote", "account_config"]

DOMAIN = "example.org"


class ServerError(RuntimeError):
    pass


def mbox_quote(msg: bytes) -> bytes:
    """A message as an mboxrd body: '>'-quote every line that matches
    ^>*From  (LF line ends)."""
    out = []
    for ln in msg.split(b"\n"):
        if ln.lstrip(b">").startswith(b"From "):
            ln = b">" + ln
        out.append(ln)
    return b"\n".join(out)


def account_config(server, user: str = "alice", *, name: str = "test",
                   defaults: dict | None = None, **keys) -> str:
    """Config text with one account for `user` on `server` (any server
    here).  Defaults: tls starttls with tls_ca_file when the server has
    TLS (else tls off), password from server.users, auth any, keep no.
    Keywords override (None removes); `state` goes into a defaults block."""
    acc = {"host": server.host, "port": server.port, "user": server.login(user),
           "password": server.users.get(user)}
    tls = keys.get("tls", "starttls" if server.cafile else "off")
    acc["tls"] = tls
    if tls != "off":
        acc["tls_ca_file"] = server.cafile
    acc["auth"] = "any"
    acc["keep"] = "no"
    acc.update(keys)
    d = dict(defaults or {})
    state = acc.pop("state", None)
    if state is not None:
        d["state"] = state
    text = pt._conf_block("defaults", d) + "\n" if d else ""
    return text + pt._conf_block(f"account {name}", acc)


class MailutilsPop3d:
    """GNU Mailutils pop3d in daemon mode on a free 127.0.0.1 port.

    MailutilsPop3d(users={"alice": "secret"}, ssl=True, apop=False,
                   extra_conf="", start=True, startup_timeout=10)

    ssl=True: `tls-mode stls` (STLS offered, plain text allowed); the
    server certificate is signed by a throwaway CA (cafile).  mailutils
    pop3d has no POP3S-only listener in this setup: port_ssl is None.
    """

    binary = "/usr/sbin/pop3d"
    package = "mailutils-pop3d"

    def __init__(self, users: dict[str, str] | None = None, ssl: bool = True,
                 apop: bool = False, extra_conf: str = "", start: bool = True,
                 startup_timeout: float = 10.0):
        if not Path(self.binary).exists():
            raise ServerError(f"{self.binary} missing (run: sh tests/deps.sh)")
        if os.geteuid() != 0:
            raise ServerError("mailutils pop3d must be started as root")
        self.users = dict(users if users is not None else {"alice": "secret", "bob": "secret"})
        self.ssl = ssl
        self.apop = apop
        self.extra_conf = extra_conf
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self._stopped = False
        self.keep_dir = os.environ.get("POPSIFT_KEEP_TMP") == "1"
        self.mail_uid, self.mail_gid = pt.ensure_mail_user()
        self.dir = Path(tempfile.mkdtemp(prefix="popsift-mailutils-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.port = pt.free_port()
        self.port_ssl = None
        self.log_path = self.dir / "pop3d.log"
        self.conf_path = self.dir / "pop3d.conf"
        self.vdir = self.dir / "virtdomain"
        self.vdir.mkdir()
        self.home_root = self.dir / "home"
        self.home_root.mkdir()
        os.chmod(self.home_root, 0o755)
        self.cafile = self.certfile = self.keyfile = None
        if ssl:
            certs = pt.make_certs(self.dir / "tls")
            os.chmod(self.dir / "tls", 0o755)
            self.cafile, self.certfile, self.keyfile = certs["ca"], certs["cert"], certs["key"]
        self.apop_db = self.dir / "apop.db"
        for user in self.users:
            self._make_home(user)
        self._write_passwd()
        self._write_conf()
        atexit.register(self.stop)
        if start:
            self.start()

    # -- setup ------------------------------------------------------------

    def login(self, user: str) -> str:
        """The name to log in with: user@example.org."""
        return f"{user}@{DOMAIN}"

    def home(self, user: str) -> Path:
        return self.home_root / user

    def mbox(self, user: str) -> Path:
        return self.home(user) / "INBOX"

    def _make_home(self, user: str) -> None:
        h = self.home(user)
        h.mkdir(exist_ok=True)
        os.chown(h, self.mail_uid, self.mail_gid)
        os.chmod(h, 0o700)

    def _write_passwd(self) -> None:
        lines = []
        for user, password in self.users.items():
            h = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                               capture_output=True, text=True, check=True).stdout.strip()
            lines.append(f"{user}:{h}:{self.mail_uid}:{self.mail_gid}:{user}:"
                         f"{self.home(user)}:/bin/false\n")
        f = self.vdir / DOMAIN
        f.write_text("".join(lines))
        os.chmod(f, 0o644)
        if self.apop:
            plain = self.dir / "apop.txt"
            plain.write_text("".join(f"{self.login(u)} {p}\n" for u, p in self.users.items()))
            with contextlib.suppress(FileNotFoundError):
                self.apop_db.unlink()
            r = subprocess.run(["popauth", "--create", "-f", str(plain), "-o", str(self.apop_db),
                                "-P", "600"], capture_output=True, text=True)
            if r.returncode != 0:
                raise ServerError(f"popauth failed: {r.stderr}")

    def _write_conf(self) -> None:
        tls = ""
        mode = "false"
        if self.ssl:
            mode = "stls"
            tls = (f"tls {{ ssl-certificate-file {self.certfile};\n"
                   f"      ssl-key-file {self.keyfile}; }};\n"
                   "tls-file-checks { key-file none; cert-file none; ca-file none; };\n")
        apop = ""
        if self.apop:
            apop = (f"apop-database-file \"{self.apop_db}\";\n"
                    "apop-database-owner root;\n"
                    "apop-database-safety none;\n")
        conf = f"""# generated by tests/lib/servers.py
logging {{ syslog no; severity info; }};
auth {{ authentication generic; authorization virtdomain; }};
virtdomain {{ passwd-dir "{self.vdir}"; }};
pidfile "{self.dir}/pop3d.pid";
mode daemon;
foreground yes;
max-children 50;
login-delay 0;
{tls}{apop}server 127.0.0.1:{self.port} {{ tls-mode {mode}; timeout 60; }};
{self.extra_conf}
"""
        self.conf_path.write_text(conf)

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        log = open(self.log_path, "ab")
        # pop3d --config-file implies --no-config: /etc/mailutils.conf is ignored
        self.proc = subprocess.Popen([self.binary, f"--config-file={self.conf_path}"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"pop3d exited with {self.proc.returncode}:\n{self.log_tail()}")
            if pt._port_open(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"pop3d did not listen on {self.port}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # -- mail ------------------------------------------------------------------

    def add_message(self, user: str, msg: bytes, sender: str = "sender@example.org") -> None:
        """Append msg (LF line ends) to the user's mbox, mboxrd-quoted."""
        body = mbox_quote(msg.replace(b"\r\n", b"\n"))
        if not body.endswith(b"\n"):
            body += b"\n"
        stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime()).encode()
        box = self.mbox(user)
        with open(box, "ab") as f:
            f.write(b"From " + sender.encode() + b" " + stamp + b"\n" + body + b"\n")
        os.chown(box, self.mail_uid, self.mail_gid)
        os.chmod(box, 0o600)

    def add_messages(self, user: str, messages) -> None:
        for m in messages:
            self.add_message(user, m)

    def messages(self, user: str) -> list[bytes]:
        """Messages left in the user's mbox (From_ line removed, unquoted).
        mailutils adds X-IMAPbase/X-UID/Status headers when it rewrites."""
        return pt.mbox_messages(self.mbox(user))

    def count(self, user: str) -> int:
        return len(self.messages(user))
