"""popsift_test — helpers for popsift's integration tests, demo and benchmarks.

Standard library only (Debian's /usr/bin/python3, 3.11).  Must run as root:
Dovecot is started as root and drops privileges to an unprivileged mail user.

    from popsift_test import Dovecot, write_config, run_popsift, mbox_messages

    with Dovecot(users={"alice": "secret"}) as dc:
        dc.add_message("alice", b"From: a@example.org\\nSubject: hi\\n\\nbody\\n")
        cfg = write_config(tmp / "config", account_config(dc, "alice",
                           deliver=f"mbox {tmp}/inbox.mbox", state=f"{tmp}/state.db"))
        r = run_popsift(["-f", cfg, "run"])
        assert r.returncode == 0, r.stderr
        assert dc.count("alice") == 0

Messages are stored as given; store them with LF line ends (as on disk in a
Maildir): Dovecot turns LF into CRLF on the wire and dot-stuffs.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import email.header
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MAIL_USER = "popsift-mail"
DEFAULT_MECHANISMS = "plain login cram-md5 apop"

__all__ = [
    "REPO_ROOT", "Dovecot", "DovecotError", "free_port", "free_ports",
    "write_config", "account_config", "popsift_path", "run_popsift",
    "mbox_messages", "mbox_from_lines", "maildir_messages", "maildir_files",
    "strip_header", "header_values", "decoded_subject", "load_genmail",
    "ensure_mail_user",
]


# --------------------------------------------------------------------------
# ports

_port_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (and not handed out before
    by this process)."""
    with _port_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port
    raise RuntimeError("no free port found")


def free_ports(n: int) -> list[int]:
    return [free_port() for _ in range(n)]


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# the unprivileged mail user

def ensure_mail_user(name: str = MAIL_USER) -> tuple[int, int]:
    """Return (uid, gid) of the mail user, creating a system user if needed."""
    try:
        pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise DovecotError(f"mail user {name!r} missing and not root to create it")
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home",
         "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    # another process may have won the race; either way it must exist now
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


# --------------------------------------------------------------------------
# Dovecot

class DovecotError(RuntimeError):
    pass


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise DovecotError(f"openssl {' '.join(args)} failed:\n{r.stderr}")


def make_certs(d: Path, cn: str = "localhost") -> dict[str, Path]:
    """A throwaway CA and a server certificate signed by it (EC P-256).
    Returns paths: ca, ca_key, cert, key."""
    d.mkdir(parents=True, exist_ok=True)
    ext = d / "server.ext"
    ext.write_text("basicConstraints = critical, CA:FALSE\n"
                   "keyUsage = critical, digitalSignature, keyEncipherment\n"
                   "extendedKeyUsage = serverAuth\n"
                   "subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "3650", "-subj", "/CN=popsift test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", f"/CN={cn}", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "3650", "-extfile", "server.ext",
             "-out", "server.pem", cwd=d)
    for f in ("ca.key", "server.key"):
        os.chmod(d / f, 0o600)
    for f in ("ca.pem", "server.pem"):
        os.chmod(d / f, 0o644)
    return {"ca": d / "ca.pem", "ca_key": d / "ca.key",
            "cert": d / "server.pem", "key": d / "server.key"}


def _pubkey_pin(key: Path) -> str:
    """libcurl's CURLOPT_PINNEDPUBLICKEY form: sha256//BASE64(sha256(SPKI DER))."""
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def _traversable(path: Path) -> bool:
    """Can a process that is not the owner reach inside path?"""
    p = path.resolve()
    for d in (p, *p.parents):
        try:
            if not os.stat(d).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


class Dovecot:
    """A throwaway Dovecot POP3 server on 127.0.0.1.

    Dovecot(users={"alice": "secret"}, extra_conf="", mechanisms="plain login
            cram-md5 apop", ssl=True, debug=False, keep_dir=False,
            auth_failure_delay=0, start=True, startup_timeout=60,
            stop_grace=0.3)

    Attributes: dir, port (plain POP3, STLS offered when ssl), port_ssl
    (POP3S; None when ssl=False), host ("127.0.0.1"), cafile (CA that
    signed the server certificate, for tls_ca_file), certfile, keyfile,
    pin (sha256//... for tls_fingerprint), log_path, conf_path, users,
    mail_uid, mail_gid.

    extra_conf is appended to dovecot.conf (later settings win), e.g.
    "pop3_uidl_format = %g" or "mail_max_userip_connections = 50".

    oauth2_introspect="http://127.0.0.1:PORT/introspect" adds a passdb of
    driver oauth2 (XOAUTH2 and OAUTHBEARER) that checks bearer tokens by
    POSTing token=... there (tests/lib/oauthd.py serves it); passwords
    keep working.

    lmtp=True adds Dovecot's LMTP server (dovecot-lmtpd): on the unix
    socket lmtp_socket (mode 0666) and on 127.0.0.1:lmtp_port; RCPT TO the
    passwd-file user name delivers to that user's Maildir.
    """

    def __init__(self, users: dict[str, str] | None = None, extra_conf: str = "",
                 mechanisms: str = DEFAULT_MECHANISMS, ssl: bool = True,
                 debug: bool = False, keep_dir: bool | None = None,
                 auth_failure_delay: int = 0, start: bool = True,
                 startup_timeout: float = 60.0, stop_grace: float = 0.3,
                 oauth2_introspect: str | None = None, lmtp: bool = False):
        if shutil.which("dovecot") is None and not Path("/usr/sbin/dovecot").exists():
            raise DovecotError("dovecot not installed (run: sh tests/deps.sh)")
        if os.geteuid() != 0:
            raise DovecotError("the test Dovecot must be started as root")
        self.users = dict(users if users is not None else {"alice": "secret", "bob": "secret"})
        self.extra_conf = extra_conf
        self.mechanisms = mechanisms
        self.oauth2_introspect = oauth2_introspect
        self.lmtp = lmtp
        self.ssl = ssl
        self.debug = debug
        self.auth_failure_delay = auth_failure_delay
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.keep_dir = (os.environ.get("POPSIFT_KEEP_TMP") == "1"
                         if keep_dir is None else keep_dir)
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self._seq = 0
        self._seq_base = int(time.time())
        self._stopped = False

        self.mail_uid, self.mail_gid = ensure_mail_user()
        # Dovecot's processes run as dovecot/dovenull/popsift-mail: every
        # directory above ours must be searchable by others.
        parent = Path(tempfile.gettempdir())
        if not _traversable(parent):
            parent = Path("/tmp")
        self.dir = Path(tempfile.mkdtemp(prefix="popsift-dovecot-", dir=parent))
        # Dovecot drops privileges: every path it reads must be traversable
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.port_ssl = free_port() if ssl else None
        self.lmtp_socket = self.dir / "lmtp.sock" if lmtp else None
        self.lmtp_port = free_port() if lmtp else None
        self.log_path = self.dir / "dovecot.log"
        self.conf_path = self.dir / "dovecot.conf"
        self.passwd_path = self.dir / "passwd"
        self.home_root = self.dir / "home"
        self.home_root.mkdir()
        os.chmod(self.home_root, 0o755)
        (self.dir / "run").mkdir()
        (self.dir / "state").mkdir()
        os.chmod(self.dir / "run", 0o755)

        certs = make_certs(self.dir / "tls")
        os.chmod(self.dir / "tls", 0o755)
        self.cafile = certs["ca"]
        self.certfile = certs["cert"]
        self.keyfile = certs["key"]
        self.pin = _pubkey_pin(self.keyfile)

        for user in self.users:
            self._make_home(user)
        self._write_passwd()
        self._write_conf()
        atexit.register(self.stop)
        if start:
            self.start()

    # -- setup ------------------------------------------------------------

    def home(self, user: str) -> Path:
        return self.home_root / user

    def maildir(self, user: str) -> Path:
        return self.home(user) / "Maildir"

    def _make_home(self, user: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._@+-]+", user):
            raise ValueError(f"bad user name {user!r}")
        home = self.home(user)
        for d in (home, home / "Maildir", *(home / "Maildir" / s for s in ("tmp", "new", "cur"))):
            d.mkdir(exist_ok=True)
            os.chown(d, self.mail_uid, self.mail_gid)
            os.chmod(d, 0o700)

    def _write_passwd(self) -> None:
        lines = []
        for user, password in self.users.items():
            if ":" in password or "\n" in password:
                raise ValueError("password must not contain ':' or newline")
            lines.append(f"{user}:{{PLAIN}}{password}::::{self.home(user)}::\n")
        tmp = self.passwd_path.with_suffix(".tmp")
        tmp.write_text("".join(lines))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.passwd_path)

    def add_user(self, user: str, password: str) -> None:
        """Add (or change) a user; passwd-file is re-read by Dovecot on change."""
        self.users[user] = password
        self._make_home(user)
        self._write_passwd()

    def _write_conf(self) -> None:
        d = self.dir
        ssl_block = ""
        if self.ssl:
            dh = Path("/usr/share/dovecot/dh.pem")
            ssl_block = (
                "ssl = yes\n"
                f"ssl_cert = <{self.certfile}\n"
                f"ssl_key = <{self.keyfile}\n"
                + (f"ssl_dh = <{dh}\n" if dh.exists() else "")
            )
        else:
            ssl_block = "ssl = no\n"
        listeners = (f"  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {self.port}\n  }}\n")
        if self.ssl:
            listeners += (f"  inet_listener pop3s {{\n    address = 127.0.0.1\n"
                          f"    port = {self.port_ssl}\n    ssl = yes\n  }}\n")
        debug = ("auth_debug = yes\nauth_verbose = yes\nmail_debug = yes\nverbose_ssl = yes\n"
                 if self.debug else "auth_verbose = yes\n")
        oauth_passdb, mechanisms = self._oauth2_passdb()
        conf = f"""# generated by tests/lib/popsift_test.py
instance_name = popsift-test-{os.getpid()}-{d.name}
base_dir = {d}/run
state_dir = {d}/state
protocols = pop3
listen = 127.0.0.1
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
default_login_user = dovenull
default_internal_user = dovecot
mail_uid = {self.mail_uid}
mail_gid = {self.mail_gid}
first_valid_uid = {min(self.mail_uid, 500)}
first_valid_gid = {min(self.mail_gid, 500)}
mail_location = maildir:~/Maildir
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = {self.auth_failure_delay} secs
pop3_uidl_format = %08Xu%08Xv
mail_max_userip_connections = 50
{ssl_block}{debug}{oauth_passdb}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_path}
}}
service pop3-login {{
{listeners}}}
{self._lmtp_conf()}{self.extra_conf}
"""
        self.conf_path.write_text(conf)
        os.chmod(self.conf_path, 0o644)

    def _lmtp_conf(self) -> str:
        if not self.lmtp:
            return ""
        return ("protocols = $protocols lmtp\n"
                "service lmtp {\n"
                f"  unix_listener {self.lmtp_socket} {{\n    mode = 0666\n  }}\n"
                f"  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {self.lmtp_port}\n  }}\n"
                "}\n")

    def _oauth2_passdb(self) -> tuple[str, str]:
        if not self.oauth2_introspect:
            return "", self.mechanisms
        ext = self.dir / "dovecot-oauth2.conf.ext"
        ext.write_text(f"introspection_url = {self.oauth2_introspect}\n"
                       "introspection_mode = post\n"
                       "username_attribute = username\n"
                       "active_attribute = active\nactive_value = true\n")
        os.chmod(ext, 0o644)
        passdb = ("passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                  f"  args = {ext}\n}}\n")
        return passdb, self.mechanisms + " xoauth2 oauthbearer"

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "Dovecot":
        if self.proc is not None:
            return self
        self._stopped = False
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL, stdout=open(self.dir / "dovecot.out", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        ports = [p for p in (self.port, self.port_ssl) if p]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if all(_port_open(p) for p in ports):
                return self
            time.sleep(0.05)
        status = self.proc.poll()
        self.stop(remove=False)
        raise DovecotError(
            f"Dovecot did not start (exit status {status}); conf {self.conf_path}\n"
            f"--- output\n{self._tail(self.dir / 'dovecot.out')}"
            f"--- log\n{self.log_tail()}")

    def stop(self, remove: bool | None = None) -> None:
        """Stop the server and (unless keep_dir) remove its directory."""
        if self._stopped:
            return
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            # A clean shutdown takes Dovecot's master about a second (and 5 s
            # right after start, while pop3-login waits for stats-writer).
            # The server is throwaway: ask nicely, then kill its process
            # group (the master leads it: start_new_session; still alive,
            # so the group id cannot have been reused).
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        if remove is None:
            remove = not self.keep_dir
        if remove:
            self._stopped = True
            atexit.unregister(self.stop)
            shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self) -> None:
        self.stop(remove=False)
        self.start()

    def __enter__(self) -> "Dovecot":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Dovecot {self.host}:{self.port}/{self.port_ssl} dir={self.dir}>"

    # -- logs ------------------------------------------------------------

    @staticmethod
    def _tail(path: Path, lines: int = 40) -> str:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return "(none)\n"
        return "".join(text.splitlines(keepends=True)[-lines:]) or "(empty)\n"

    def log_tail(self, lines: int = 40) -> str:
        return self._tail(self.log_path, lines)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, pattern: str, n: int, timeout: float = 30) -> str:
        """The log once it holds n matches of the regex pattern (or the
        deadline passed).  popsift does not wait for QUIT's reply when it
        deleted nothing, so Dovecot may log a session's end a moment after
        popsift exited."""
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.log())) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.log()

    # -- mailboxes ---------------------------------------------------------

    def _next_name(self, data: bytes) -> str:
        # Dovecot assigns UIDs to new mail in the order of the time stamp at
        # the start of the name: keep it increasing so POP3 order = add order.
        # S= is the size on disk, W= the size with CRLF line ends (what LIST
        # reports); Dovecot trusts them, so they must be exact.
        seq = self._seq
        self._seq += 1
        sec = self._seq_base + seq // 1000000
        usec = seq % 1000000
        lf = data.count(b"\n") - data.count(b"\r\n")
        return f"{sec}.M{usec}P{os.getpid()}Q{seq}.popsift-test,S={len(data)},W={len(data) + lf}"

    def add_message(self, user: str, data: bytes) -> str:
        """Deliver one message into the user's Maildir/new (via tmp/, atomic).
        Returns the file name."""
        if isinstance(data, str):
            data = data.encode()
        md = self.maildir(user)
        if not md.exists():
            raise KeyError(f"no such user {user!r}")
        name = self._next_name(data)
        tmp = md / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fchown(fd, self.mail_uid, self.mail_gid)
        finally:
            os.close(fd)
        os.rename(tmp, md / "new" / name)
        return name

    def add_messages(self, user: str, messages) -> list[str]:
        return [self.add_message(user, m) for m in messages]

    def _listing(self, user: str) -> list[Path]:
        md = self.maildir(user)
        files = []
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError):
                files.extend(p for p in (md / sub).iterdir() if p.is_file())
        return sorted(files)

    def message_files(self, user: str) -> list[Path]:
        """The messages' files, one per message, in add order.  popsift
        does not wait for QUIT's reply when it deleted nothing, so Dovecot
        may still be moving what it read from new/ to cur/ (as name:2,S)
        when popsift has exited: a directory read during those renames
        can miss files.  Read until two listings agree (a few seconds at
        most), and count a message once by the name before its flags."""
        files = self._listing(user)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.02)
            again = self._listing(user)
            if again == files:
                break
            files = again
        one = {}
        for p in files:
            one.setdefault(p.name.split(":")[0], p)
        return [one[k] for k in sorted(one)]

    def count(self, user: str) -> int:
        """Messages left on the server for user (files in new/ and cur/)."""
        return len(self.message_files(user))

    def messages(self, user: str) -> list[bytes]:
        """Contents of the messages left on the server, in add order."""
        for _ in range(50):
            try:
                return [p.read_bytes() for p in self.message_files(user)]
            except FileNotFoundError:   # renamed to cur/ meanwhile
                time.sleep(0.02)
        return [p.read_bytes() for p in self.message_files(user)]

    def clear(self, user: str) -> None:
        for p in self.message_files(user):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def plain_make_env(env: dict | None = None) -> dict:
    """The environment (os.environ by default) as a user's shell has it:
    without what `make check SANITIZE=1` hands down (SANITIZE is exported
    by make, MAKEFLAGS carries it), for the tests that run make themselves."""
    e = dict(os.environ if env is None else env)
    for k in ("SANITIZE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        e.pop(k, None)
    return e


# --------------------------------------------------------------------------
# popsift config and binary

def write_config(path, text: str, mode: int = 0o600) -> Path:
    """Write a popsift config file with the given mode (default 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return path


# the order keys are written in; unknown keys follow in the order given
_KEY_ORDER = ["host", "port", "user", "password", "password_command", "tls",
              "tls_ca_file", "tls_fingerprint", "auth", "timeout", "keep",
              "received_header", "rules", "deliver", "interval"]


def _conf_value(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _conf_block(header: str, keys: dict) -> str:
    items = {k: v for k, v in keys.items() if v is not None}
    ordered = [k for k in _KEY_ORDER if k in items] + [k for k in items if k not in _KEY_ORDER]
    out = [header]
    for k in ordered:
        v = items[k]
        for one in (v if isinstance(v, (list, tuple)) else [v]):
            out.append(f"{k} {_conf_value(one)}")
    return "\n".join(out) + "\n"


def account_config(dovecot: Dovecot | None = None, user: str = "alice", *,
                   name: str = "test", defaults: dict | None = None,
                   extra: str = "", **keys) -> str:
    """Config text with one account for `user` on `dovecot`.

    Defaults: tls on (POP3S port, tls_ca_file = dovecot.cafile), password
    from dovecot.users, auth any, keep no.  Any key can be overridden by a
    keyword (tls="off", port=..., keep="yes", deliver="mbox /x", ...);
    None removes a key; a list value repeats the key.  `state` and any
    `defaults` go into a `defaults` block.  tls="starttls"/"off" switch
    the port to the plain listener unless port is given."""
    acc: dict = {}
    state = keys.pop("state", None)
    if dovecot is not None:
        tls = keys.get("tls", "on")
        acc.update(host=dovecot.host,
                   port=dovecot.port_ssl if tls == "on" else dovecot.port,
                   user=user, password=dovecot.users.get(user))
        if tls != "off":
            acc["tls_ca_file"] = dovecot.cafile
        acc["tls"] = tls
    acc.setdefault("auth", "any")
    acc.setdefault("keep", "no")
    acc.update(keys)
    d = dict(defaults or {})
    if state is not None:
        d["state"] = state
    text = _conf_block("defaults", d) + "\n" if d else ""
    text += _conf_block(f"account {name}", acc)
    if extra:
        text += extra if extra.endswith("\n") else extra + "\n"
    return text


def popsift_path() -> Path:
    """The binary under test: $POPSIFT, else ./popsift at the repo root."""
    return Path(os.environ.get("POPSIFT") or REPO_ROOT / "popsift")


def run_popsift(args, env: dict | None = None, timeout: float = 120, input=None,
                cwd=None, binary=None) -> subprocess.CompletedProcess:
    """Run popsift with args (strs or Paths); returns CompletedProcess with
    text stdout/stderr.  env entries are added to (None: removed from) the
    current environment.  On timeout the process is killed and
    returncode is -9 with a note in stderr."""
    cmd = [str(binary or popsift_path()), *map(str, args)]
    full_env = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = str(v)
    try:
        return subprocess.run(cmd, env=full_env, cwd=cwd, input=input, timeout=timeout,
                              capture_output=True, text=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        def s(x):
            return x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
        return subprocess.CompletedProcess(cmd, -9, s(e.stdout),
                                           s(e.stderr) + f"\n[popsift_test: killed after {timeout}s]\n")


# --------------------------------------------------------------------------
# reading what was delivered

_FROM_RE = re.compile(rb"^>+From ")


def _mbox_split(path) -> list[tuple[bytes, bytes]]:
    data = Path(path).read_bytes()
    if not data:
        return []
    lines = data.splitlines(keepends=True)
    msgs: list[tuple[bytes, list[bytes]]] = []
    prev_blank = True  # start of file counts as after a blank line
    for line in lines:
        if line.startswith(b"From ") and prev_blank:
            msgs.append((line.rstrip(b"\r\n"), []))
        elif msgs:
            msgs[-1][1].append(line)
        else:
            raise ValueError(f"{path}: does not start with a 'From ' line")
        prev_blank = line in (b"\n", b"\r\n")
    out = []
    for from_line, body in msgs:
        # the blank line that precedes the next From_ line (or ends the file)
        # belongs to the mbox, not to the message
        if body and body[-1] in (b"\n", b"\r\n"):
            body = body[:-1]
        text = b"".join(_FROM_RE.sub(lambda m: m.group(0)[1:], ln) for ln in body)
        out.append((from_line, text))
    return out


def mbox_messages(path) -> list[bytes]:
    """Messages of an mboxrd file, From_ line removed, '>From ' unquoted one
    level, separator blank line removed.  A missing file is []."""
    if not Path(path).exists():
        return []
    return [m for _, m in _mbox_split(path)]


def mbox_from_lines(path) -> list[str]:
    if not Path(path).exists():
        return []
    return [f.decode(errors="replace") for f, _ in _mbox_split(path)]


def maildir_files(d) -> list[Path]:
    """Message files in new/ and cur/ of Maildir d, oldest first."""
    d = Path(d)
    files = []
    for sub in ("new", "cur"):
        with contextlib.suppress(FileNotFoundError):
            files.extend(p for p in (d / sub).iterdir() if p.is_file())
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def maildir_messages(d) -> list[bytes]:
    """Contents of the files in new/ and cur/ of Maildir d, oldest first."""
    return [p.read_bytes() for p in maildir_files(d)]


def _header_block(msg: bytes) -> tuple[bytes, bytes]:
    """(header lines with their line ends, the rest from the blank line on)."""
    found = [(i, sep) for sep in (b"\n\n", b"\r\n\r\n") if (i := msg.find(sep)) >= 0]
    if not found:
        return msg, b""
    i, sep = min(found)
    cut = i + len(sep) // 2
    return msg[:cut], msg[cut:]


def strip_header(msg: bytes, name: str, count: int = 1) -> bytes:
    """Remove the first `count` occurrences (0: all) of header `name`,
    continuation lines included, e.g. the Received: line popsift adds."""
    head, rest = _header_block(msg)
    lines = head.splitlines(keepends=True)
    out, removed, skipping = [], 0, False
    prefix = name.lower().encode() + b":"
    for ln in lines:
        if skipping and ln[:1] in (b" ", b"\t"):
            continue
        skipping = False
        if ln.lower().startswith(prefix) and (count == 0 or removed < count):
            removed += 1
            skipping = True
            continue
        out.append(ln)
    return b"".join(out) + rest


def header_values(msg: bytes, name: str) -> list[str]:
    """Raw (undecoded, unfolded) values of header `name`."""
    head, _ = _header_block(msg)
    text = head.decode("utf-8", errors="surrogateescape")
    vals, cur = [], None
    prefix = name.lower() + ":"
    for ln in text.splitlines():
        if ln[:1] in (" ", "\t") and cur is not None:
            cur += " " + ln.strip()
            continue
        if cur is not None:
            vals.append(cur)
            cur = None
        if ln.lower().startswith(prefix):
            cur = ln[len(prefix):].strip()
    if cur is not None:
        vals.append(cur)
    return vals


def decoded_subject(msg: bytes) -> str:
    """The Subject header, RFC 2047 decoded (UTF-8, GBK, ...)."""
    vals = header_values(msg, "Subject")
    if not vals:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(vals[0])))
    except Exception:
        return vals[0]


# --------------------------------------------------------------------------
# the sample-mail generator

_genmail = None


def load_genmail():
    """Import tests/gen-mail.py as a module (its name has a dash)."""
    global _genmail
    if _genmail is None:
        path = REPO_ROOT / "tests" / "gen-mail.py"
        spec = importlib.util.spec_from_file_location("gen_mail", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules.setdefault("gen_mail", mod)
        spec.loader.exec_module(mod)
        _genmail = mod
    return _genmail


# Under `make check SANITIZE=1` ASan's shadow memory and quarantine raise
# every RSS figure: memory ceilings are scaled, the flatness checks stay.
SANITIZED = os.environ.get("POPSIFT_SANITIZE") == "1"
RSS_SCALE = 12 if SANITIZED else 1


def preload_shim(tmp: Path, name: str, source: str) -> dict:
    """Compile C source into tmp/NAME.so and return the environment that
    preloads it into popsift (a fault a real system will not make on cue:
    a failing fsync, a kill at a chosen syscall)."""
    src, so = tmp / f"{name}.c", tmp / f"{name}.so"
    src.write_text(source)
    cc = subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(so), str(src), "-ldl"],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    return {"LD_PRELOAD": str(so), "ASAN_OPTIONS": "verify_asan_link_order=0"}
