#!/usr/bin/python3
"""smtpsink.py — an SMTP server on 127.0.0.1 that accepts and discards mail.

    smtpsink.py PORT COUNTFILE

Needs Debian's python3-aiosmtpd.  Every accepted message appends one line
(its size and recipient count) to COUNTFILE, so the harness can check that
every message arrived.  Prints "ready" once listening; stops on SIGTERM.
"""

import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, path):
        self.out = open(path, "a", buffering=1)

    async def handle_DATA(self, server, session, envelope):
        self.out.write(f"{len(envelope.content)} {len(envelope.rcpt_tos)}\n")
        return "250 OK"


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    ctl = Controller(Sink(path), hostname="127.0.0.1", port=port,
                     data_size_limit=200 * 1024 * 1024)
    ctl.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    print("ready", flush=True)
    stop.wait()
    ctl.stop()


if __name__ == "__main__":
    main()
