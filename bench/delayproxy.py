#!/usr/bin/python3
"""delayproxy.py — a TCP proxy on 127.0.0.1 that delays each direction.

    delayproxy.py LISTEN_PORT TARGET_PORT [DELAY_MS]     (default 10 ms)

Every chunk read from one side is written to the other DELAY_MS later, in
order, without throttling: a 10 ms delay each way is a 20 ms round trip
with loopback bandwidth, like a fast link to a far server.  Prints "ready"
on stdout once listening; stops on SIGTERM.
"""

import asyncio
import collections
import signal
import socket
import sys


async def pump(reader, writer, delay, loop):
    """Copy reader to writer, each chunk delayed by `delay` seconds."""
    queue = collections.deque()
    wake = asyncio.Event()
    done = False

    async def sender():
        while True:
            while not queue:
                if done:
                    return
                wake.clear()
                await wake.wait()
            due, data = queue[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            queue.popleft()
            if data is None:
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.ensure_future(sender())
    try:
        while True:
            data = await reader.read(262144)
            queue.append((loop.time() + delay, data or None))
            wake.set()
            if not data:
                break
    except (ConnectionError, OSError):
        queue.append((loop.time() + delay, None))
        wake.set()
    done = True
    wake.set()
    try:
        await task
    except (ConnectionError, OSError):
        pass
    try:
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def handle(creader, cwriter, target, delay):
    loop = asyncio.get_running_loop()
    try:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        cwriter.close()
        return
    for w in (cwriter, swriter):
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await asyncio.gather(pump(creader, swriter, delay, loop),
                         pump(sreader, cwriter, delay, loop),
                         return_exceptions=True)
    for w in (cwriter, swriter):
        w.close()


async def main():
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    delay = (float(sys.argv[3]) if len(sys.argv) > 3 else 10.0) / 1000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target, delay), "127.0.0.1", listen, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
