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

    popa3d and solid-pop3d (Debian packages of the same names)

        with Popa3d(users={"alice": "secret"}) as pa:      # or SolidPop3d(apop=True)
            pa.add_message("alice", b"From: a@example.org\\n...")
            pa.login("alice")        # "popsift-alice": a system user
            pa.port                  # POP3 on 127.0.0.1, plain text only

    Both declare `Conflicts: pop3-server`, which dovecot-pop3d provides, so
    apt cannot install them here: tests/deps.sh unpacks their .debs
    (apt-get download + dpkg-deb -x) under /var/cache/popsift-test/PKG/
    ($POPSIFT_DEB_CACHE) and the binary is run from there.  Both are
    inetd servers (the connection is stdin/stdout): InetdListener accepts
    on 127.0.0.1:PORT in a thread and runs one server process per
    connection with the accepted socket as fd 0 and 1 (never a pipe:
    solid-pop3d with a stdin that is not a socket turns into a standalone
    daemon on port 110 of every interface).

    They authenticate system users through PAM (service popa3d /
    solid-pop3d, absent, so PAM's "other": pam_unix): the users are system
    accounts popsift-USER (created once, password set at every start, home
    /var/lib/popsift-test/popsift-USER), and every such server holds an
    exclusive lock (/run/lock/popsift-test-sysusers.lock) for its lifetime
    so two test runs on one machine never share a mailbox.  popa3d reads
    /var/mail/popsift-USER (compiled in) and chroots to /var/lib/popa3d
    as user popa3d before login; solid-pop3d runs as user spop3d before
    login and reads the mbox named in its config (here in its temporary
    directory); its APOP secret is ~/.spop3d (apop=True).

    Courier (courier-pop + courier-base unpacked, courier-authlib
    installed) and Cyrus (cyrus-pop3d + cyrus-common unpacked)

        with CourierPop3d(users={"alice": "secret"}) as cu:   # or CyrusPop3d(...)
            cu.add_message("alice", msg)   # Maildir/new; Cyrus: through LMTP
            cu.port, cu.port_ssl, cu.cafile  # POP3 (STLS), POP3S, the CA

    Both run in a PID namespace of their own (unshare --pid --fork
    --kill-child: stop() kills every process of theirs), Courier also in
    a mount namespace in which the test's directories stand for
    /etc/courier and /run/courier (authlib's compiled-in paths).  Users
    are virtual (userdb, sasldb); mail is owned by popsift-mail.

Helpers: mkmsg, TRICKY, message_id, summary, account_config,
pop3_dialog and uidls (a POP3 session of our own, to see the server's
view), mbox_quote.  How each server is set up and why: doc/compat.md.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import popsift_test as pt

__all__ = ["MailutilsPop3d", "Popa3d", "SolidPop3d", "CourierPop3d", "CyrusPop3d", "InetdListener", "ServerError",
           "mbox_quote", "account_config", "mkmsg", "message_id", "summary", "TRICKY",
           "DEB_CACHE", "unpacked", "pop3_dialog", "uidls"]

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


# --------------------------------------------------------------------------
# helpers shared by the test_compat*.py files

# bodies that trip up dot-stuffing and From_ quoting
TRICKY = [
    b".leading dot\n..two dots\n.\nlast\n",
    b"From the start of a line\n>From quoted once\n>>From quoted twice\nend\n",
    b"no final newline",
    b"".join(b"line %d of a longer body\n" % i for i in range(2000)),
]


def mkmsg(tag: str, body: bytes = b"Hello.\n", subject: str | None = None,
          to: str = "alice@example.org") -> bytes:
    """A small message (LF line ends) with a unique Message-ID."""
    mid = f"<{tag}.{uuid.uuid4().hex}@popsift.test>"
    return (f"From: Sender <sender@example.com>\n"
            f"To: {to}\n"
            f"Subject: {subject or tag}\n"
            f"Date: Fri, 01 Mar 2024 09:00:00 +0000\n"
            f"Message-ID: {mid}\n\n").encode() + body


def message_id(m: bytes) -> str:
    v = pt.header_values(m, "Message-ID")
    return v[0] if v else ""


def summary(stderr: str, account: str) -> tuple[int, ...]:
    """(new, delivered, kept, deleted) from popsift's summary line for
    `account` (it prints it on stderr)."""
    m = re.search(rf"^{re.escape(account)}: (\d+) new, (\d+) delivered, (\d+) kept, "
                  rf"(\d+) deleted, ", stderr, re.M)
    assert m, stderr
    return tuple(int(x) for x in m.groups())


def pop3_dialog(server, user: str, commands: list[str], timeout: float = 10) -> list[bytes]:
    """Log in to server as user with USER/PASS (plain text), send each
    command and wait for its reply (no pipelining), QUIT.  Returns the
    replies: the status line, plus the lines of a multi-line reply
    (un-dot-stuffed, CRLF kept) for UIDL, LIST, RETR, TOP and CAPA."""
    multi = ("UIDL", "LIST", "RETR", "TOP", "CAPA")
    out = []
    with socket.create_connection((server.host, server.port), timeout=timeout) as c:
        f = c.makefile("rb")

        def reply(cmd: str | None) -> bytes:
            if cmd is not None:
                c.sendall(cmd.encode() + b"\r\n")
            line = f.readline()
            if not line:
                raise ServerError(f"connection closed after {cmd!r}")
            words = (cmd or "").split()
            if line.startswith(b"+OK") and words and words[0].upper() in multi and (
                    words[0].upper() not in ("UIDL", "LIST") or len(words) == 1):
                while (ln := f.readline()) not in (b".\r\n", b""):
                    line += ln[1:] if ln.startswith(b".") else ln
            return line

        reply(None)
        for cmd in [f"USER {server.login(user)}", f"PASS {server.users[user]}", *commands]:
            out.append(reply(cmd))
        out.append(reply("QUIT"))
    return out[2:-1]


def uidls(server, user: str) -> list[tuple[int, str]]:
    """(number, UIDL) of each message, by a UIDL command of our own."""
    r = pop3_dialog(server, user, ["UIDL"])[0]
    assert r.startswith(b"+OK"), r
    return [(int(n), u) for n, u in (ln.split() for ln in r.decode().splitlines()[1:])]


def _mbox_from_line(sender: str) -> bytes:
    stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime()).encode()
    return b"From " + sender.encode() + b" " + stamp + b"\n"


class _Server:
    """What every server here has: `with` stops it, and the tail of its
    log for a failed test (log_path)."""

    log_path: Path

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _workdir(self, name: str) -> None:
        """What a daemon here starts from: 127.0.0.1 and a free port, the
        mail user, a world-readable temp dir of its own (left in place
        with POPSIFT_KEEP_TMP=1), no process yet."""
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self._stopped = False
        self.keep_dir = os.environ.get("POPSIFT_KEEP_TMP") == "1"
        self.mail_uid, self.mail_gid = pt.ensure_mail_user()
        self.dir = Path(tempfile.mkdtemp(prefix=f"popsift-{name}-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.port = pt.free_port()


class MailutilsPop3d(_Server):
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
        self._workdir("mailutils")
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


# --------------------------------------------------------------------------
# servers unpacked from their .deb (tests/deps.sh), run per connection

DEB_CACHE = Path(os.environ.get("POPSIFT_DEB_CACHE") or "/var/cache/popsift-test")


def unpacked(pkg: str) -> Path:
    """Root of the unpacked .deb of pkg (tests/deps.sh makes it)."""
    root = DEB_CACHE / pkg
    if not (root / ".unpacked").is_file():
        raise ServerError(f"{pkg} is not unpacked in {DEB_CACHE} (run as root: sh tests/deps.sh)")
    return root


class InetdListener:
    """What inetd does, for one test: listen on 127.0.0.1 (a free port),
    and for each connection start argv with the accepted socket as its
    stdin and stdout (stderr appends to log_path).  Each server process
    leads its own session; stop() waits a moment for them, then kills
    their process groups."""

    def __init__(self, argv: list[str], log_path: Path, env: dict | None = None,
                 host: str = "127.0.0.1"):
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = env
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.children: list[subprocess.Popen] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"inetd:{self.port}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn, open(self.log_path, "ab") as log:
                try:
                    p = subprocess.Popen(self.argv, stdin=conn, stdout=conn, stderr=log,
                                         env=self.env, close_fds=True, start_new_session=True)
                except OSError as e:
                    log.write(f"inetd: cannot start {self.argv[0]}: {e}\n".encode())
                    continue
            self.children.append(p)
            self.connections += 1

    def stop(self, grace: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self.sock.close()
        deadline = time.monotonic() + grace
        for p in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.0, deadline - time.monotonic()))
        for p in self.children:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
            else:
                # the session's other processes (a forked helper) go too
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)


SYSUSER_PREFIX = "popsift-"
SYSUSER_HOMES = Path("/var/lib/popsift-test")
SYSUSER_LOCK = Path("/run/lock/popsift-test-sysusers.lock")


def ensure_system_user(name: str, home: str = "/nonexistent", group: str | None = None) -> pwd.struct_passwd:
    """A system account (nologin), created when missing; its home set to
    `home`.  group: an existing primary group (else a group of its own)."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        cmd = ["useradd", "--system", "--no-create-home", "--home-dir", home,
               "--shell", "/usr/sbin/nologin"]
        cmd += ["--gid", group] if group else ["--user-group"]
        r = subprocess.run(cmd + [name], capture_output=True, text=True)
        try:
            pw = pwd.getpwnam(name)   # another process may have won the race
        except KeyError:
            raise ServerError(f"useradd {name} failed: {r.stderr}") from None
    if pw.pw_dir != home:
        subprocess.run(["usermod", "--home", home, name], check=True, capture_output=True)
        pw = pwd.getpwnam(name)
    return pw


class _SpoolServer(_Server):
    """Common part of the servers that serve system users' mboxes:
    users, the lock, mbox writing, life cycle.  Subclasses set binary,
    package and mbox(), and define _argv()."""

    package = ""
    binary = ""            # path inside the unpacked package
    name = "server"
    apop = False

    def __init__(self, users: dict[str, str] | None = None, start: bool = True,
                 lock_timeout: float = 300.0):
        if os.geteuid() != 0:
            raise ServerError(f"{self.name} must be started as root")
        self.root = unpacked(self.package)
        self.exe = self.root / self.binary.lstrip("/")
        if not self.exe.is_file():
            raise ServerError(f"{self.exe} missing: unpacked {self.package} is incomplete")
        self.users = dict(users if users is not None else {"alice": "secret"})
        for u, pw in self.users.items():
            if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", u):
                raise ValueError(f"bad user name {u!r}")
            if not pw or ":" in pw or "\n" in pw:
                raise ValueError("password must be non-empty, without ':' or newline")
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.port_ssl = None
        self.cafile = None
        self.listener: InetdListener | None = None
        self._stopped = False
        self.keep_dir = os.environ.get("POPSIFT_KEEP_TMP") == "1"
        self._lock_fd = self._lock(lock_timeout)
        try:
            self.dir = Path(tempfile.mkdtemp(prefix=f"popsift-{self.package}-", dir="/tmp"))
            os.chmod(self.dir, 0o755)
            self.log_path = self.dir / "server.log"
            self.log_path.touch()
            SYSUSER_HOMES.mkdir(parents=True, exist_ok=True)
            os.chmod(SYSUSER_HOMES, 0o755)
            self.pw: dict[str, pwd.struct_passwd] = {}
            for u in self.users:
                self._setup_user(u)
            self._setup()
        except BaseException:
            self._release()
            raise
        atexit.register(self.stop)
        if start:
            self.start()

    # -- users -------------------------------------------------------------

    def login(self, user: str) -> str:
        return SYSUSER_PREFIX + user

    def home(self, user: str) -> Path:
        return SYSUSER_HOMES / self.login(user)

    def mbox(self, user: str) -> Path:
        raise NotImplementedError

    def _setup_user(self, user: str) -> None:
        name, home = self.login(user), self.home(user)
        pw = ensure_system_user(name, str(home))
        self.pw[user] = pw
        if home.exists():
            shutil.rmtree(home)
        home.mkdir()
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o700)
        r = subprocess.run(["chpasswd"], input=f"{name}:{self.users[user]}\n",
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise ServerError(f"chpasswd {name} failed: {r.stderr}")
        self._new_mbox(user)

    def _new_mbox(self, user: str) -> None:
        box = self.mbox(user)
        with contextlib.suppress(FileNotFoundError):
            box.unlink()
        fd = os.open(box, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchown(fd, self.pw[user].pw_uid, self.pw[user].pw_gid)
        os.close(fd)

    def _lock(self, timeout: float) -> int:
        SYSUSER_LOCK.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(SYSUSER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise ServerError(f"{SYSUSER_LOCK} held by another test run for {timeout}s")
                time.sleep(0.1)

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- life cycle ----------------------------------------------------------

    def _setup(self) -> None:
        pass

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}

    def start(self) -> None:
        self.listener = InetdListener(self._argv(), self.log_path, env=self._env())
        self.port = self.listener.port

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            if self.listener is not None:
                self.listener.stop()
            for u in self.users:
                with contextlib.suppress(OSError):
                    self.mbox(u).unlink()
                shutil.rmtree(self.home(u), ignore_errors=True)
            self._cleanup()
        finally:
            self._release()
            if not self.keep_dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def _cleanup(self) -> None:
        pass


    # -- mail ------------------------------------------------------------------

    def stored(self, msg: bytes) -> bytes:
        """msg as this class writes it into the mbox (without the From_
        line and the separating blank line): LF line ends, mboxrd quoting,
        a final newline added when missing."""
        body = mbox_quote(msg.replace(b"\r\n", b"\n"))
        return body if body.endswith(b"\n") else body + b"\n"

    def add_message(self, user: str, msg: bytes, sender: str = "sender@example.org") -> None:
        """Append msg to the user's mbox (From_ line, mboxrd-quoted body,
        blank line), as an MTA delivering to /var/mail would."""
        box = self.mbox(user)
        with open(box, "ab") as f:
            f.write(_mbox_from_line(sender) + self.stored(msg) + b"\n")

    def add_messages(self, user: str, messages) -> None:
        for m in messages:
            self.add_message(user, m)

    def messages(self, user: str) -> list[bytes]:
        """Messages left in the user's mbox (From_ line removed, unquoted)."""
        return pt.mbox_messages(self.mbox(user))

    def count(self, user: str) -> int:
        return len(self.messages(user))


class Popa3d(_SpoolServer):
    """popa3d 1.0.3 (Debian package popa3d), unpacked, inetd style.

    USER/PASS of system users (PAM), no CAPA, no APOP, no SASL, no TLS;
    mailbox /var/mail/popsift-USER (compiled in).  Before login it
    chroots to /var/lib/popa3d as user popa3d: both are made here when
    missing (the package's postinst would make them)."""

    package = "popa3d"
    binary = "/usr/sbin/popa3d"
    name = "popa3d"

    def mbox(self, user: str) -> Path:
        return Path("/var/mail") / self.login(user)

    def _setup(self) -> None:
        ensure_system_user("popa3d", "/var/lib/popa3d")
        chroot = Path("/var/lib/popa3d")
        chroot.mkdir(parents=True, exist_ok=True)
        os.chown(chroot, 0, 0)
        os.chmod(chroot, 0o755)
        Path("/var/mail").mkdir(exist_ok=True)

    def _argv(self) -> list[str]:
        return [str(self.exe)]


class SolidPop3d(_SpoolServer):
    """solid-pop3d 0.15 (Debian package solid-pop3d), unpacked, inetd style.

    SolidPop3d(users={"alice": "secret"}, apop=False)

    USER/PASS of system users (PAM), APOP with the secret in
    ~popsift-USER/.spop3d (apop=True: AllowAPOP, the greeting carries a
    timestamp; the secret is the user's password, or apop_secrets[user]
    when apop_secrets is given: a user left out has no APOP secret), no
    CAPA, no SASL, no TLS.  Before login it runs as user spop3d (group mail),
    made here when missing.  The mbox is DIR/mail/popsift-USER (the
    MailDropName of its config file DIR/spop3d.conf; the directory is
    sticky and world-writable for its dot-lock files)."""

    package = "solid-pop3d"
    binary = "/usr/sbin/solid-pop3d"
    name = "solid-pop3d"

    def __init__(self, users: dict[str, str] | None = None, apop: bool = False,
                 apop_secrets: dict[str, str] | None = None, **kw):
        self.apop = apop
        self.apop_secrets = apop_secrets
        super().__init__(users, **kw)

    def mbox(self, user: str) -> Path:
        return self.dir / "mail" / self.login(user)

    def _setup_user(self, user: str) -> None:
        if not (self.dir / "mail").exists():
            (self.dir / "mail").mkdir()
            os.chmod(self.dir / "mail", 0o1777)
        super()._setup_user(user)
        secrets = self.users if self.apop_secrets is None else self.apop_secrets
        if self.apop and user in secrets:
            # what pop_auth(1) writes: every byte of the secret XOR 0xff, in hex
            secret = "".join(f"{b ^ 0xff:02x}" for b in secrets[user].encode())
            cfg = self.home(user) / ".spop3d"
            fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, f"APOPSecret {secret}\n".encode())
            os.fchown(fd, self.pw[user].pw_uid, self.pw[user].pw_gid)
            os.close(fd)

    def _setup(self) -> None:
        ensure_system_user("spop3d", "/var/lib/solid-pop3d", group="mail")
        self.conf_path = self.dir / "spop3d.conf"
        self.conf_path.write_text(
            "/* generated by tests/lib/servers.py */\n"
            "<Global>\n"
            f"\tMailDropName\t\"{self.dir}/mail/%s\"\n"
            "\tMailDropType\tmailbox\n"
            f"\tAllowAPOP\t{'yes' if self.apop else 'no'}\n"
            "\tAPOPServerName\t\"popsift.test\"\n"
            "\tAddBulletins\tno\n"
            "\tLogStatistics\tno\n"
            "\tAutoLogoutTime\t60s\n"
            "</Global>\n")
        os.chmod(self.conf_path, 0o644)

    def _argv(self) -> list[str]:
        return [str(self.exe), "-f", str(self.conf_path)]


class _UnshareServer(_Server):
    """A server run under `unshare --pid --fork --kill-child`: killing
    unshare kills the namespace's first process, and with it the kernel
    kills every process in the PID namespace (Courier's couriertcpd calls
    setsid(): a process group would not catch it)."""

    name: str

    def _ready(self) -> bool:
        raise NotImplementedError

    def _spawn(self, argv: list, env: dict) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, start_new_session=True)
        log.close()
        ports = [p for p in (self.port, self.port_ssl) if p]
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.proc.returncode}:\n"
                                  f"{self.log_tail()}")
            if all(pt._port_open(p) for p in ports) and self._ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} did not listen on {ports}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class CourierPop3d(_UnshareServer):
    """Courier's POP3 server 1.0.16 (Debian packages courier-pop and
    courier-base, unpacked by tests/deps.sh: courier-pop conflicts with
    dovecot-pop3d), with courier-authlib's authdaemond and its userdb
    module (apt-installed: they conflict with nothing).

    CourierPop3d(users={"alice": "secret"}, ssl=True,
                 sasl="PLAIN LOGIN CRAM-MD5", start=True)

    Users are userdb (virtual) users: uid/gid of popsift-mail, home
    DIR/home/USER, mailbox DIR/home/USER/Maildir; the password is both
    systempw (SHA-512 crypt: USER/PASS, PLAIN, LOGIN) and, unless
    cram=False, hmac-md5pw (CRAM-MD5; made with userdbpw).  sasl is
    POP3AUTH, the SASL mechanisms CAPA offers (to every user, whether
    or not the user has a secret for them).  Courier has no APOP.

    authdaemond and libcourierauth have their paths compiled in
    (/etc/courier/authdaemonrc, /etc/courier/userdb.dat,
    /run/courier/authdaemon/socket): everything runs in a mount
    namespace of its own (unshare --mount) in which DIR/etc and DIR/run
    are bound over /etc/courier and /run/courier, so nothing of the
    machine's is read or changed (two empty directories are made as
    mount points when missing).  Inside, couriertcpd listens on
    127.0.0.1:port (courierpop3login, STLS through couriertls when ssl)
    and, when ssl, on 127.0.0.1:port_ssl (couriertls -server -tcpd:
    POP3S), as Debian's /usr/lib/courier/pop3d{,-ssl} scripts start
    them.  The certificate is signed by a throwaway CA (cafile)."""

    name = "courier"

    authdaemond = Path("/usr/lib/courier/courier-authlib/authdaemond")

    def __init__(self, users: dict[str, str] | None = None, ssl: bool = True,
                 sasl: str = "PLAIN LOGIN CRAM-MD5", cram: bool = True, start: bool = True,
                 startup_timeout: float = 10.0):
        if os.geteuid() != 0:
            raise ServerError("Courier must be started as root")
        self.cram = cram
        self.pop = unpacked("courier-pop")
        self.base = unpacked("courier-base")
        for f in (self.authdaemond, Path("/usr/sbin/makeuserdb"), Path("/usr/sbin/userdbpw")):
            if not f.exists():
                raise ServerError(f"{f} missing (run: sh tests/deps.sh)")
        self.users = dict(users if users is not None else {"alice": "secret"})
        self.ssl = ssl
        self.sasl = sasl
        self.startup_timeout = startup_timeout
        self._seq = 0
        self._workdir("courier")
        self.port_ssl = pt.free_port() if ssl else None
        self.log_path = self.dir / "courier.log"
        self.etc = self.dir / "etc"
        self.run_dir = self.dir / "run"
        self.etc.mkdir()
        (self.run_dir / "authdaemon").mkdir(parents=True)
        os.chmod(self.run_dir / "authdaemon", 0o755)
        self.home_root = self.dir / "home"
        self.home_root.mkdir()
        os.chmod(self.home_root, 0o755)
        self.cafile = self.certfile = None
        if ssl:
            certs = pt.make_certs(self.dir / "tls")
            self.cafile = certs["ca"]
            # couriertls wants the key and the certificate in one file
            self.certfile = self.dir / "tls" / "pop3d.pem"
            self.certfile.write_bytes(certs["key"].read_bytes() + certs["cert"].read_bytes())
            # couriertls runs for STLS after courierpop3login gave up root:
            # a throwaway key may be readable
            os.chmod(self.dir / "tls", 0o755)
            os.chmod(self.certfile, 0o644)
        for user in self.users:
            self._make_maildir(user)
        (self.etc / "authdaemonrc").write_text(
            "# generated by tests/lib/servers.py\n"
            'authmodulelist="authuserdb"\n'
            'authmodulelistorig="authuserdb"\n'
            "daemons=2\n"
            "authdaemonvar=/run/courier/authdaemon\n"
            "DEBUG_LOGIN=0\n"
            'DEFAULTOPTIONS=""\n'
            'LOGGEROPTS=""\n')
        self._write_userdb()
        atexit.register(self.stop)
        if start:
            self.start()

    # -- setup ------------------------------------------------------------

    def login(self, user: str) -> str:
        return user

    def home(self, user: str) -> Path:
        return self.home_root / user

    def maildir(self, user: str) -> Path:
        return self.home(user) / "Maildir"

    def _make_maildir(self, user: str) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", user):
            raise ValueError(f"bad user name {user!r}")
        for d in (self.home(user), self.maildir(user),
                  *(self.maildir(user) / s for s in ("tmp", "new", "cur"))):
            d.mkdir()
            os.chown(d, self.mail_uid, self.mail_gid)
            os.chmod(d, 0o700)

    def _write_userdb(self) -> None:
        lines = []
        for user, password in self.users.items():
            if not password or any(c in password for c in "|\n\t"):
                raise ValueError("password must be non-empty, without | tab or newline")
            crypt = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                                   capture_output=True, text=True, check=True).stdout.strip()
            fields = (f"uid={self.mail_uid}|gid={self.mail_gid}|home={self.home(user)}"
                      f"|mail={self.maildir(user)}|systempw={crypt}")
            if self.cram:
                hmac = subprocess.run(["/usr/sbin/userdbpw", "-hmac-md5"],
                                      input=f"{password}\n{password}\n",
                                      capture_output=True, text=True, check=True).stdout.strip()
                fields += f"|hmac-md5pw={hmac}"
            lines.append(f"{user}\t{fields}\n")
        db = self.etc / "userdb"
        fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, "".join(lines).encode())
        os.close(fd)
        r = subprocess.run(["/usr/sbin/makeuserdb", "-f", str(db)], capture_output=True, text=True)
        if r.returncode != 0:
            raise ServerError(f"makeuserdb failed: {r.stdout}{r.stderr}")

    # -- life cycle ----------------------------------------------------------

    def _script(self) -> str:
        login = self.pop / "usr/lib/courier/courier/courierpop3login"
        pop3d = self.pop / "usr/lib/courier/courier/courierpop3d"
        tcpd = self.base / "usr/sbin/couriertcpd"
        tls = self.base / "usr/bin/couriertls"
        opts = "-address=127.0.0.1 -maxprocs=20 -maxperip=20 -nodnslookup -noidentlookup"
        s = ("set -e\n"
             f"mount --bind '{self.etc}' /etc/courier\n"
             f"mount --bind '{self.run_dir}' /run/courier\n"
             f"'{self.authdaemond}' &\n"
             f"'{tcpd}' {opts} {self.port} '{login}' '{pop3d}' Maildir &\n")
        if self.ssl:
            s += (f"POP3_TLS=1 POP3_STARTTLS=NO '{tcpd}' {opts} {self.port_ssl} "
                  f"'{tls}' -server -tcpd '{login}' '{pop3d}' Maildir &\n")
        return s + "wait\n"

    def _env(self) -> dict:
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C",
               "POP3AUTH": self.sasl, "POP3AUTH_TLS": self.sasl,
               "MAILDIRPATH": "Maildir", "POP3_PROXY": "0",
               "POP3_STARTTLS": "YES" if self.ssl else "NO", "POP3_TLS_REQUIRED": "0"}
        if self.ssl:
            env.update(COURIERTLS=str(self.base / "usr/bin/couriertls"),
                       TLS_CERTFILE=str(self.certfile), TLS_VERIFYPEER="NONE")
        return env

    def start(self) -> None:
        for d in ("/etc/courier", "/run/courier"):
            os.makedirs(d, exist_ok=True)
        self._spawn(["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                     "--kill-child", "sh", "-c", self._script()], self._env())

    def _ready(self) -> bool:
        return (self.run_dir / "authdaemon/socket").exists()


    # -- mail ------------------------------------------------------------------

    def add_message(self, user: str, msg: bytes) -> Path:
        """Deliver msg (stored as given: LF line ends) into Maildir/new.
        Courier lists messages oldest first by modification time: each
        message gets a time one second after the one before."""
        md = self.maildir(user)
        self._seq += 1
        name = f"{1700000000 + self._seq}.M{self._seq:06d}P{os.getpid()}.popsift-test"
        tmp = md / "tmp" / name
        tmp.write_bytes(msg)
        os.chown(tmp, self.mail_uid, self.mail_gid)
        os.chmod(tmp, 0o600)
        t = 1700000000 + self._seq
        os.utime(tmp, (t, t))
        os.rename(tmp, md / "new" / name)
        return md / "new" / name

    def add_messages(self, user: str, messages) -> None:
        for m in messages:
            self.add_message(user, m)

    def message_files(self, user: str) -> list[Path]:
        files = []
        for sub in ("new", "cur"):
            files.extend(p for p in (self.maildir(user) / sub).iterdir() if p.is_file())
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def messages(self, user: str) -> list[bytes]:
        return [p.read_bytes() for p in self.message_files(user)]

    def count(self, user: str) -> int:
        return len(self.message_files(user))


class CyrusPop3d(_UnshareServer):
    """Cyrus IMAP's pop3d 3.6.1 (Debian packages cyrus-pop3d and
    cyrus-common, unpacked by tests/deps.sh: cyrus-pop3d conflicts with
    dovecot-pop3d, and an installed cyrus-common would start a
    system-wide Cyrus).  Its libraries libcyrus*.so come from the
    unpacked cyrus-common (LD_LIBRARY_PATH); the others (libical3,
    libxapian30, libsasl2 and its modules) are apt-installed.

    CyrusPop3d(users={"alice": "secret"}, ssl=True,
               sasl="PLAIN LOGIN CRAM-MD5", apop=True, start=True)

    Cyrus master runs from the unpacked package with imapd.conf and
    cyrus.conf of the test's own (every path in DIR; -C given to each
    service), as user popsift-mail (cyrus_user), in a PID namespace of
    its own (unshare --pid --fork --kill-child: stop() kills them all).
    Services: pop3 on 127.0.0.1:port (STLS when ssl), pop3s on
    127.0.0.1:port_ssl (ssl), lmtpd on the unix socket DIR/socket/lmtp.
    Users are SASL users in DIR/sasldb2 (plain-text secrets, so PLAIN,
    LOGIN, CRAM-MD5 and APOP all work); sasl=None leaves sasl_mech_list
    out (every mechanism libsasl2 has a plugin for is offered).  Mail is
    delivered through LMTP (add_message), which creates the INBOX
    (autocreate_post); Cyrus adds Return-Path, Received and
    X-Cyrus-Session-Id (and X-Sieve) at delivery.  What is on the server
    is read back through POP3 (messages(), count())."""

    name = "cyrus"

    def __init__(self, users: dict[str, str] | None = None, ssl: bool = True,
                 sasl: str | None = "PLAIN LOGIN CRAM-MD5", apop: bool = True,
                 start: bool = True, startup_timeout: float = 15.0):
        if os.geteuid() != 0:
            raise ServerError("Cyrus must be started as root")
        self.pop = unpacked("cyrus-pop3d")
        self.common = unpacked("cyrus-common")
        self.bin = self.common / "usr/lib/cyrus/bin"
        self.libdir = self.common / "usr/lib/x86_64-linux-gnu"
        if not Path("/usr/sbin/saslpasswd2").exists():
            raise ServerError("saslpasswd2 missing (run: sh tests/deps.sh)")
        self.users = dict(users if users is not None else {"alice": "secret"})
        self.ssl = ssl
        self.sasl = sasl
        self.apop = apop
        self.startup_timeout = startup_timeout
        self._workdir("cyrus")
        self.port_ssl = pt.free_port() if ssl else None
        self.log_path = self.dir / "cyrus.log"
        self.conf_path = self.dir / "imapd.conf"
        self.lmtp_socket = self.dir / "socket" / "lmtp"
        for d in ("lib", "spool", "sieve", "socket", "run"):
            (self.dir / d).mkdir()
            os.chown(self.dir / d, self.mail_uid, self.mail_gid)
        self.cafile = self.certfile = self.keyfile = None
        if ssl:
            certs = pt.make_certs(self.dir / "tls")
            os.chmod(self.dir / "tls", 0o755)
            self.cafile, self.certfile, self.keyfile = certs["ca"], certs["cert"], certs["key"]
            os.chown(self.keyfile, self.mail_uid, self.mail_gid)
        self._write_conf()
        self._write_sasldb()
        atexit.register(self.stop)
        if start:
            self.start()

    # -- setup ------------------------------------------------------------

    def login(self, user: str) -> str:
        return user

    def _write_conf(self) -> None:
        d = self.dir
        conf = [
            "# generated by tests/lib/servers.py",
            f"configdirectory: {d}/lib",
            f"partition-default: {d}/spool",
            f"sievedir: {d}/sieve",
            "servername: popsift.test",
            "cyrus_user: popsift-mail",
            "cyrus_group: popsift-mail",
            "sasl_pwcheck_method: auxprop",
            "sasl_auxprop_plugin: sasldb",
            f"sasl_sasldb_path: {d}/sasldb2",
            "allowplaintext: yes",
            f"allowapop: {'yes' if self.apop else 'no'}",
            "popminpoll: 0",
            "autocreate_post: yes",
            "autocreate_quota: 0",
            "duplicatesuppression: no",
            "unixhierarchysep: yes",
            f"lmtpsocket: {self.lmtp_socket}",
            f"idlesocket: {d}/socket/idle",
            f"notifysocket: {d}/socket/notify",
            "syslog_prefix: popsift-cyrus",
        ]
        if self.sasl is not None:
            conf.append(f"sasl_mech_list: {self.sasl}")
        if self.ssl:
            conf += [f"tls_server_cert: {self.certfile}", f"tls_server_key: {self.keyfile}"]
        self.conf_path.write_text("\n".join(conf) + "\n")
        os.chmod(self.conf_path, 0o644)
        c = f"-C {self.conf_path}"
        pop3d = self.pop / "usr/lib/cyrus/bin/pop3d"
        services = [f'  pop3 cmd="{pop3d} {c}" listen="127.0.0.1:{self.port}" prefork=0',
                    f'  lmtpunix cmd="{self.bin}/lmtpd {c}" listen="{self.lmtp_socket}" prefork=0']
        if self.ssl:
            services.append(f'  pop3s cmd="{pop3d} -s {c}" listen="127.0.0.1:{self.port_ssl}" '
                            "prefork=0")
        (self.dir / "cyrus.conf").write_text(
            "# generated by tests/lib/servers.py\n"
            f'START {{\n  recover cmd="{self.bin}/ctl_cyrusdb {c} -r"\n}}\n'
            "SERVICES {\n" + "\n".join(services) + "\n}\n"
            "EVENTS {\n}\nDAEMON {\n}\n")

    def _write_sasldb(self) -> None:
        db = self.dir / "sasldb2"
        for user, password in self.users.items():
            if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", user):
                raise ValueError(f"bad user name {user!r}")
            r = subprocess.run(["/usr/sbin/saslpasswd2", "-p", "-c", "-f", str(db), "-u", "popsift.test", user],
                               input=password, capture_output=True, text=True)
            if r.returncode != 0:
                raise ServerError(f"saslpasswd2 failed: {r.stderr}")
        os.chown(db, self.mail_uid, self.mail_gid)
        os.chmod(db, 0o600)

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C",
               "LD_LIBRARY_PATH": str(self.libdir)}
        self._spawn(["unshare", "--pid", "--fork", "--kill-child",
                     str(self.bin / "master"), "-C", str(self.conf_path),
                     "-M", str(self.dir / "cyrus.conf"),
                     "-p", str(self.dir / "run" / "master.pid"), "-D"], env)

    def _ready(self) -> bool:
        return self.lmtp_socket.exists()


    # -- mail ------------------------------------------------------------------

    def add_message(self, user: str, msg: bytes, sender: str = "sender@example.org") -> None:
        """Deliver msg through LMTP (smtplib dot-stuffs and ends the data
        with CRLF)."""
        import smtplib
        with smtplib.LMTP(str(self.lmtp_socket)) as lmtp:
            refused = lmtp.sendmail(sender, [user], msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        if refused:
            raise ServerError(f"LMTP refused: {refused}")

    def add_messages(self, user: str, messages) -> None:
        for m in messages:
            self.add_message(user, m)

    def messages(self, user: str) -> list[bytes]:
        """The messages on the server as RETR gives them, LF line ends."""
        n = self.count(user)
        if n == 0:
            return []
        replies = pop3_dialog(self, user, [f"RETR {i}" for i in range(1, n + 1)])
        return [r.split(b"\r\n", 1)[1].replace(b"\r\n", b"\n") for r in replies]

    def count(self, user: str) -> int:
        (stat,) = pop3_dialog(self, user, ["STAT"])
        return int(stat.split()[1])
