#!/usr/bin/env python3
"""examples/echo/echo_test.py WEFT_ECHO - the meson test of weft-echo.

Starts weft-echo on a free port and checks, with plain blocking sockets:
echoes (small, and larger than the server's 4 KiB buffer), the connection
limit (a connection over it is closed at once; a freed slot is reused), the
idle timeout, the connection deadline (a client trickling bytes, never idle,
still loses its slot), the task dump and metrics printed on SIGUSR1, and a clean exit (status 0, a summary line, every fd the server
opened closed again) on SIGTERM and SIGINT while connections are still open.
Needs only loopback. Nothing sleeps to let the server get somewhere: each wait
is for something the test sees (a line the server prints, a connection
closed, the server's fd count, an echo). Where that can only be polled, the
short sleeps pace the poll. Waits are bounded generously (they guard against
hangs); no timing decides a pass. The helpers shared with http_test.py are in
examples/common/servertest.py.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from servertest import (WAIT, connect, expect_closed, fail, open_fds, sigusr1_report,  # noqa: E402
                        start, stop, trickle_until_closed, wait_fds)

SUMMARY = (r"served (\d+) connections \((\d+) rejected at the limit, (\d+) closed idle, "
           r"(\d+) at the connection deadline\), echoed (\d+) messages \((\d+) bytes\)")


def echo(s, data):
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(len(data) - len(got))
        if not chunk:
            fail(f"connection closed after {len(got)} of {len(data)} echoed bytes")
        got += chunk
    if got != data:
        fail("echoed bytes differ from those sent")


def echo_on_a_new_connection(port, data, what):
    """Connect and echo data, again and again until it goes through: until
    the server has seen a slot freed, a new connection is closed at once as
    over the limit, and nothing tells the client when it has. The sleep only
    paces the retries."""
    deadline = time.monotonic() + WAIT
    while True:
        c = connect(port)
        try:
            echo(c, data)
            return c
        except (SystemExit, ConnectionError):
            c.close()
            if time.monotonic() > deadline:
                fail(what)
            time.sleep(0.05)


def test_echo_limit_sigterm(binary):
    proc, port = start([binary, "--threads", "2", "--max-conns", "2"])
    a, b = connect(port), connect(port)
    for i in range(20):
        echo(a, b"hello %d" % i)
    big = bytes(range(256)) * 40  # 10 KiB: several reads on the server side
    echo(a, big)
    echo(b, b"second connection")

    over = connect(port)  # the third connection is over the limit
    expect_closed(over, "connection over the limit")
    over.close()

    a.close()  # frees a slot, once the server has seen the EOF
    c = echo_on_a_new_connection(port, b"after a slot freed", "a freed slot was never reused")

    # b and c are open and idle in recv: SIGTERM must still end the server.
    served, rejected, idled, cut, messages, nbytes = stop(proc, signal.SIGTERM, SUMMARY)
    expect_closed(b, "open connection at shutdown")
    expect_closed(c, "open connection at shutdown")
    if served < 3 or rejected < 1 or idled != 0 or cut != 0 or messages < 22 \
            or nbytes < len(big):
        fail("summary counts do not match what was sent")


class Pinger(threading.Thread):
    """Echoes on s, message after message, until the server ends it."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s, self.echoed = s, 0
        self.warm = threading.Event()  # set after 10 echoes, or at the end

    def run(self):
        try:
            while True:
                self.s.sendall(b"x" * 100)
                got = 0
                while got < 100:
                    chunk = self.s.recv(100 - got)
                    if not chunk:
                        return
                    got += len(chunk)
                self.echoed += 1
                if self.echoed >= 10:
                    self.warm.set()
        except OSError:
            return
        finally:
            self.warm.set()


def test_idle_timeout_sigint(binary):
    proc, port = start([binary, "--threads", "1", "--idle-ms", "300"])
    baseline = open_fds(proc)
    s = connect(port)
    echo(s, b"ping")
    expect_closed(s, "idle connection")
    wait_fds(proc, baseline, "after the idle close")  # its socket was closed
    pinger = Pinger(connect(port))  # echoing without a pause when SIGINT arrives
    pinger.start()
    pinger.warm.wait(WAIT)
    served, rejected, idled, _, messages, _ = stop(proc, signal.SIGINT, SUMMARY)
    pinger.join(WAIT)
    if pinger.is_alive():
        fail("a busy connection was still open after SIGINT")
    # idled is 2 if a very slow machine let the pinger pause for 300 ms.
    if (served, rejected) != (2, 0) or idled < 1 or messages < 1 + pinger.echoed:
        fail("summary counts do not match the idle-timeout run")


def test_connection_deadline(binary):
    # The idle timeout (a minute) cannot end these connections during the
    # test; only the 300 ms connection deadline can. Both slots are taken by
    # trickling clients; once the deadline has cut them, a normal client is
    # served again.
    proc, port = start([binary, "--threads", "2", "--max-conns", "2",
                       "--idle-ms", "60000", "--conn-ms", "300"])
    baseline = open_fds(proc)
    slow = [connect(port), connect(port)]
    for s in slow:
        trickle_until_closed(s, b"x", 0.02)    # each byte echoed back
        s.close()
    wait_fds(proc, baseline, "after the connection deadline")  # both sockets closed
    # A slot is given back just after its socket is closed, and a client
    # stalled for 300 ms is cut too: retry until one echo goes through.
    echo_on_a_new_connection(port, b"served after the slowloris clients were cut",
                             "no slot came back after the connection deadline").close()
    served, rejected, idled, cut, _, _ = stop(proc, signal.SIGTERM, SUMMARY)
    if served < 3 or idled != 0 or cut < 2:
        fail(f"summary counts do not match the deadline run: served {served}, "
             f"rejected {rejected}, idled {idled}, cut {cut}")


def test_sigusr1_dump(binary):
    """SIGUSR1 prints the task dump (the conn task, named, at an await's
    file:line: suspended in its recv, or still queued after the echo) and
    the metrics, and the server carries on."""
    proc, port = start([binary, "--threads", "2"], stderr=subprocess.PIPE)
    a = connect(port)
    echo(a, b"before the dump")
    text = sigusr1_report(proc)
    if not re.search(r"^task 0x[0-9a-f]+ echo-conn (?:suspended|queued|running) at "
                     r"\S+conn\.c:\d+ \(\w+\)", text, re.M):
        fail(f"no conn task at an await in {text!r}")
    echo(a, b"after the dump")  # still serving
    a.close()
    stop(proc, signal.SIGTERM, SUMMARY)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: echo_test.py WEFT_ECHO")
    test_echo_limit_sigterm(sys.argv[1])
    test_idle_timeout_sigint(sys.argv[1])
    test_connection_deadline(sys.argv[1])
    test_sigusr1_dump(sys.argv[1])
    print("echo_test: ok")


if __name__ == "__main__":
    main()
