"""fakelmtp — a scripted fake LMTP server (RFC 2033) for the faults Dovecot
will not produce on demand.

Standard library only (socket + threading), on a unix socket (`path`) or
on 127.0.0.1 (`port`).  It offers PIPELINING and answers every command at
once, in order, so pipelined commands work.

    from fakelmtp import FakeLmtp

    with FakeLmtp(sock_path, after_data=fn) as srv:
        ... popsift delivers with `lmtp unix:{srv.path} a b`
        srv.delivered    # [(rcpt, message bytes as received, dot-unstuffed)]
        srv.connections  # connections accepted
        srv.transactions # end of data reached, in all connections

after_data(n, rcpts) decides the replies to the end of the n-th message's
data (0-based over the server's life) for the accepted recipients: a list
of reply lines (without CRLF), one per recipient, or None to drop the
connection without a word.  The default saves it for everyone.  Recipients
in `unknown` get 550 at RCPT.  A recipient answered 2xx after the data
counts as delivered.
"""

import os
import socket
import threading


class FakeLmtp:
    def __init__(self, path=None, after_data=None, unknown=()):
        self.path = str(path) if path else None
        self.after_data = after_data or (lambda n, rcpts: [f"250 2.0.0 <{r}> saved" for r in rcpts])
        self.unknown = set(unknown)
        self.delivered = []
        self.connections = 0
        self.transactions = 0
        self.errors = []
        self._lock = threading.Lock()
        if self.path:
            if os.path.exists(self.path):
                os.unlink(self.path)
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(self.path)
            os.chmod(self.path, 0o666)
            self.port = None
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
        self.sock.listen(8)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(timeout=10)
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)

    def _serve(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if not self.path:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c):
        try:
            self._dialogue(c)
        except (OSError, ValueError) as e:
            self.errors.append(repr(e))
        finally:
            c.close()

    def _dialogue(self, c):
        f = c.makefile("rb")
        out = c.makefile("wb")

        def say(line):
            out.write(line.encode() + b"\r\n")
            out.flush()

        say("220 fakelmtp ready")
        rcpts = []
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb = cmd.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb == "LHLO":
                say("250-fakelmtp\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES")
            elif verb == "MAIL":
                rcpts = []
                say("250 2.1.0 OK")
            elif verb == "RCPT":
                who = cmd[cmd.index("<") + 1:cmd.index(">")]
                if who in self.unknown:
                    say(f"550 5.1.1 <{who}> User doesn't exist")
                else:
                    rcpts.append(who)
                    say("250 2.1.5 OK")
            elif verb == "DATA":
                if not rcpts:
                    say("503 5.5.1 No valid recipients")
                    continue
                say("354 OK")
                data = self._read_data(f)
                with self._lock:
                    n = self.transactions
                    self.transactions += 1
                replies = self.after_data(n, list(rcpts))
                if replies is None:
                    return   # drop without a word
                for r, reply in zip(rcpts, replies):
                    if reply.startswith("2"):
                        self.delivered.append((r, data))
                say("\r\n".join(replies))
                rcpts = []
            elif verb == "RSET":
                rcpts = []
                say("250 2.0.0 OK")
            elif verb == "QUIT":
                say("221 2.0.0 Bye")
                return
            else:
                say("500 5.5.2 Unknown command")

    @staticmethod
    def _read_data(f):
        lines = []
        while True:
            line = f.readline()
            if not line:
                raise ValueError("connection closed in the data")
            if line == b".\r\n":
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b".") else line)
