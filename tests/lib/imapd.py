"""imapd — IMAP servers for the tests of `deliver imap` (test_imap.py).

    DovecotImap(users=..., imap_capability=None, **Dovecot kw)
        the test Dovecot (popsift_test.Dovecot) with IMAP too: protocols
        pop3 imap, an imap listener on dovecot.imap_port (127.0.0.1,
        STARTTLS offered when ssl), "/" as the hierarchy separator (as
        Gmail).  imap_capability replaces what Dovecot offers after the
        login (e.g. without LITERAL+).  Existing tests are unchanged: the
        POP3-only Dovecot is the same class without this.

        dc.imap(user) -> a logged-in imaplib.IMAP4 (plain text)
        dc.imap_messages(user, folder) -> [(flags, internaldate, bytes)]

    FakeImap(script=..., **faults)
        a scripted IMAP server for faults Dovecot will not produce: every
        APPEND answered with NO [OVERQUOTA] (overquota=True), BYE in the
        middle of an APPEND (bye_after=N appends), no answer at all after
        N appends (stall_after=N), no LITERAL+ (literal_plus=False), an
        unsolicited BYE and close after each APPEND (autologout=True).  It
        accepts any LOGIN, records what was appended in .appended, and answers
    UID SEARCH by looking for its quoted strings in what was appended.
"""

from __future__ import annotations

import imaplib
import os
import re
import socket
import threading
import time

from pathlib import Path

import popsift_test as pt

# dovecot-imapd (tests/deps.sh installs it), or the package unpacked
# (apt-get download, dpkg-deb -x) where it cannot be installed
IMAPD_DIRS = [Path("/usr/lib/dovecot"),
              Path(os.environ.get("POPSIFT_DEB_CACHE", "/var/cache/popsift-test"))
              / "dovecot-imapd/usr/lib/dovecot"]
IMAP_SERVICES = ("imap", "imap-login", "imap-hibernate", "imap-urlauth",
                 "imap-urlauth-login", "imap-urlauth-worker")


def imapd_dir() -> Path:
    for d in IMAPD_DIRS:
        if (d / "imap").exists() and (d / "imap-login").exists():
            return d
    raise pt.DovecotError("dovecot-imapd is neither installed nor unpacked (sh tests/deps.sh)")


class DovecotImap(pt.Dovecot):
    def __init__(self, *args, imap_capability: str | None = None, **kw):
        self.imap_port = pt.free_port()
        self.imap_capability = imap_capability
        super().__init__(*args, **kw)

    def _write_conf(self) -> None:
        super()._write_conf()
        conf = self.conf_path.read_text()
        conf = conf.replace("protocols = pop3\n", "protocols = pop3 imap\n", 1)
        # folders as directories: "." may be part of a name, as on Gmail
        conf = conf.replace("mail_location = maildir:~/Maildir\n",
                            "mail_location = maildir:~/Maildir:LAYOUT=fs\n", 1)
        conf += (f"service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n"
                 f"    port = {self.imap_port}\n  }}\n  inet_listener imaps {{\n"
                 f"    port = 0\n  }}\n}}\n"
                 "namespace inbox {\n  inbox = yes\n  separator = /\n}\n")
        d = imapd_dir()
        if d != IMAPD_DIRS[0]:
            for svc in IMAP_SERVICES:
                conf += f"service {svc} {{\n  executable = {d / svc}\n}}\n"
        if self.imap_capability is not None:
            conf += f"imap_capability = {self.imap_capability}\n"
        self.conf_path.write_text(conf)

    def start(self):
        super().start()
        deadline = time.monotonic() + self.startup_timeout
        while not pt._port_open(self.imap_port):
            if time.monotonic() > deadline:
                raise pt.DovecotError(f"no IMAP listener on {self.imap_port}\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def imap(self, user: str) -> imaplib.IMAP4:
        m = imaplib.IMAP4(self.host, self.imap_port, timeout=30)
        m.login(user, self.users[user])
        return m

    def imap_folders(self, user: str) -> list[str]:
        m = self.imap(user)
        try:
            typ, data = m.list()
            out = []
            for line in data:
                out.append(line.decode().rsplit(' "/" ', 1)[-1].strip('"'))
            return out
        finally:
            m.logout()

    def imap_count(self, user: str, folder: str = "INBOX") -> int:
        """Messages in folder (0 if it does not exist), one cheap STATUS."""
        m = self.imap(user)
        try:
            typ, data = m.status('"%s"' % folder, "(MESSAGES)")
            return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1)) if typ == "OK" else 0
        finally:
            m.logout()

    def imap_messages(self, user: str, folder: str = "INBOX") -> list[tuple[str, str, bytes]]:
        """(flags, internal date, message) of each message in folder."""
        m = self.imap(user)
        try:
            typ, _ = m.select('"%s"' % folder, readonly=True)
            if typ != "OK":
                return []
            typ, data = m.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
            out = []
            for item in data:
                if not isinstance(item, tuple):
                    continue
                meta = item[0].decode()
                flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1)
                date = re.search(r'INTERNALDATE "([^"]*)"', meta).group(1)
                out.append((flags, date, item[1]))
            return out
        finally:
            m.logout()


class FakeImap:
    """A scripted IMAP server on 127.0.0.1 (one connection at a time)."""

    def __init__(self, *, literal_plus: bool = True, overquota: bool = False,
                 bye_after: int | None = None, stall_after: int | None = None,
                 appendlimit: int | None = None, refuse_login: bool = False,
                 autologout: bool = False):
        self.literal_plus = literal_plus
        self.overquota = overquota
        self.bye_after = bye_after
        self.stall_after = stall_after
        self.appendlimit = appendlimit
        self.refuse_login = refuse_login
        self.autologout = autologout
        self.appended: list[bytes] = []
        self.commands: list[str] = []
        self.errors: list[BaseException] = []
        self.host = "127.0.0.1"
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self.port = self._sock.getsockname()[1]
        self._sock.listen(5)
        self._stop = threading.Event()
        self._conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> "FakeImap":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for s in (self._sock, self._conn):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=10)
        self._sock.close()

    def caps(self) -> str:
        c = "IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 UIDPLUS"
        if self.literal_plus:
            c += " LITERAL+"
        if self.appendlimit:
            c += f" APPENDLIMIT={self.appendlimit}"
        return c

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            self._conn = c
            try:
                with c:
                    self._session(c)
            except (OSError, ConnectionError):
                pass
            except BaseException as e:  # noqa: BLE001 - reported to the test
                self.errors.append(e)

    def _session(self, c: socket.socket) -> None:
        c.settimeout(60)
        f = c.makefile("rb")
        c.sendall(f"* OK [CAPABILITY {self.caps()}] fake ready\r\n".encode())
        while True:
            line = f.readline()
            if not line:
                return
            tag, _, rest = line.decode(errors="replace").rstrip("\r\n").partition(" ")
            verb = rest.split(" ", 1)[0].upper()
            if verb == "CAPABILITY":
                c.sendall(f"* CAPABILITY {self.caps()}\r\n{tag} OK done\r\n".encode())
            elif verb in ("LOGIN", "AUTHENTICATE"):
                self.commands.append(rest)
                if verb == "AUTHENTICATE" and len(rest.split()) < 3:
                    c.sendall(b"+ \r\n")
                    self.commands.append(f.readline().decode(errors="replace").rstrip())
                ok = "NO [AUTHENTICATIONFAILED] nope" if self.refuse_login else \
                    f"OK [CAPABILITY {self.caps()}] logged in"
                c.sendall(f"{tag} {ok}\r\n".encode())
            elif verb == "APPEND":
                self.commands.append(rest)
                if not self._append(c, f, tag, rest):
                    return
            elif verb == "UID" and rest.upper().startswith("UID SEARCH"):
                self.commands.append(rest)
                keys = [k.replace('\\"', '"') for k in re.findall(r'"((?:[^"\\]|\\.)*)"', rest)]
                hits = [str(i + 1) for i, m in enumerate(self.appended)
                        if all(k.encode() in m for k in keys)]
                c.sendall(f"* SEARCH {' '.join(hits)}\r\n{tag} OK search done\r\n".encode())
            elif verb == "LOGOUT":
                c.sendall(f"* BYE bye\r\n{tag} OK bye\r\n".encode())
                return
            else:
                self.commands.append(rest)
                c.sendall(f"{tag} OK {verb} done\r\n".encode())

    def _append(self, c, f, tag: str, rest: str) -> bool:
        m = re.search(r"\{(\d+)(\+?)\}$", rest)
        n, plus = int(m.group(1)), m.group(2) == "+"
        k = len(self.appended)
        if self.stall_after is not None and k >= self.stall_after:
            self._stop.wait(120)
            return False
        if not plus:
            c.sendall(b"+ go ahead\r\n")
        data = f.read(n)
        f.readline()
        if self.bye_after is not None and k >= self.bye_after:
            c.sendall(b"* BYE shutting down\r\n")
            return False
        if self.overquota:
            c.sendall(f"{tag} NO [OVERQUOTA] Quota exceeded\r\n".encode())
            return True
        self.appended.append(data)
        c.sendall(f"{tag} OK [APPENDUID 1 {k + 1}] done\r\n".encode()
                  + (b"* BYE Autologout; idle for too long\r\n" if self.autologout else b""))
        return not self.autologout
