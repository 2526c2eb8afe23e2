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
hangs); no timing decides a pass.
"""
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

WAIT = 10.0  # seconds: the bound on every wait


def fail(msg):
    sys.exit(f"echo_test: FAIL: {msg}")


def start(binary, *args, stderr=None):
    proc = subprocess.Popen([binary, "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=stderr, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], WAIT)
    line = proc.stdout.readline() if ready else ""
    m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
    if not m:
        proc.kill()
        fail(f"expected 'listening on 127.0.0.1:<port>', got {line!r}")
    return proc, int(m.group(1))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


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


def expect_closed(s, what):
    """The server must end the connection (EOF or reset) within WAIT."""
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        fail(f"{what}: the server did not close the connection")
    if data:
        fail(f"{what}: unexpected data {data!r}")


def stop(proc, sig):
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail(f"weft-echo did not exit after {sig.name}")
    if proc.returncode != 0:
        fail(f"weft-echo exited with {proc.returncode} after {sig.name}")
    m = re.search(r"served (\d+) connections \((\d+) rejected at the limit, (\d+) closed idle, "
                  r"(\d+) at the connection deadline\), echoed (\d+) messages \((\d+) bytes\); (-?\d+) fds left open", out)
    if not m:
        fail(f"no summary line in {out!r}")
    print(out.strip())
    counts = [int(g) for g in m.groups()]
    if counts[-1] != 0:
        fail(f"{counts[-1]} fds were still open when weft-echo exited")
    return counts[:-1]


def open_fds(proc):
    return len(os.listdir(f"/proc/{proc.pid}/fd"))


def wait_fds(proc, want, what):
    """The server's fd count must come back to want within WAIT. Polled: the
    kernel offers nothing to block on; the sleep only paces the loop."""
    deadline = time.monotonic() + WAIT
    while open_fds(proc) != want:
        if time.monotonic() > deadline:
            fail(f"{what}: server has {open_fds(proc)} fds open, expected {want}")
        time.sleep(0.02)


def test_echo_limit_sigterm(binary):
    proc, port = start(binary, "--threads", "2", "--max-conns", "2")
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
    # Nothing tells the client when the server has seen it, so retry until a
    # connection is echoed (one that comes too early is closed as over the
    # limit); the sleep only paces the retries.
    deadline = time.monotonic() + WAIT
    while True:
        c = connect(port)
        try:
            echo(c, b"after a slot freed")
            break
        except (SystemExit, ConnectionError):
            c.close()
            if time.monotonic() > deadline:
                fail("a freed slot was never reused")
            time.sleep(0.05)

    # b and c are open and idle in recv: SIGTERM must still end the server.
    served, rejected, idled, cut, messages, nbytes = stop(proc, signal.SIGTERM)
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
    proc, port = start(binary, "--threads", "1", "--idle-ms", "300")
    baseline = open_fds(proc)
    s = connect(port)
    echo(s, b"ping")
    expect_closed(s, "idle connection")
    wait_fds(proc, baseline, "after the idle close")  # its socket was closed
    pinger = Pinger(connect(port))  # echoing without a pause when SIGINT arrives
    pinger.start()
    pinger.warm.wait(WAIT)
    served, rejected, idled, _, messages, _ = stop(proc, signal.SIGINT)
    pinger.join(WAIT)
    if pinger.is_alive():
        fail("a busy connection was still open after SIGINT")
    # idled is 2 if a very slow machine let the pinger pause for 300 ms.
    if (served, rejected) != (2, 0) or idled < 1 or messages < 1 + pinger.echoed:
        fail("summary counts do not match the idle-timeout run")


def trickle_until_closed(s):
    """Play slowloris on s: one byte at a time, each echoed, far more often
    than the idle timeout, until the server ends the connection. Returns the
    bytes echoed. The sleep only paces the trickle."""
    deadline = time.monotonic() + WAIT
    echoed = 0
    while time.monotonic() < deadline:
        try:
            s.sendall(b"x")
            if s.recv(1) != b"x":
                return echoed
        except (ConnectionError, socket.timeout):
            return echoed
        echoed += 1
        time.sleep(0.02)
    fail("a trickling client kept its slot past the connection deadline")


def test_connection_deadline(binary):
    # The idle timeout (a minute) cannot end these connections during the
    # test; only the 300 ms connection deadline can. Both slots are taken by
    # trickling clients; once the deadline has cut them, a normal client is
    # served again.
    proc, port = start(binary, "--threads", "2", "--max-conns", "2",
                       "--idle-ms", "60000", "--conn-ms", "300")
    baseline = open_fds(proc)
    slow = [connect(port), connect(port)]
    for s in slow:
        trickle_until_closed(s)
        s.close()
    wait_fds(proc, baseline, "after the connection deadline")  # both sockets closed
    # A slot is given back just after its socket is closed, and a client
    # stalled for 300 ms is cut too: retry until one echo goes through.
    deadline = time.monotonic() + WAIT
    while True:
        c = connect(port)
        try:
            echo(c, b"served after the slowloris clients were cut")
            c.close()
            break
        except (SystemExit, ConnectionError):
            c.close()
            if time.monotonic() > deadline:
                fail("no slot came back after the connection deadline")
            time.sleep(0.05)
    served, rejected, idled, cut, _, _ = stop(proc, signal.SIGTERM)
    if served < 3 or idled != 0 or cut < 2:
        fail(f"summary counts do not match the deadline run: served {served}, "
             f"rejected {rejected}, idled {idled}, cut {cut}")


def test_sigusr1_dump(binary):
    """SIGUSR1 prints the task dump (the conn task, named, at an await's
    file:line: suspended in its recv, or still queued after the echo) and
    the metrics, and the server carries on."""
    proc, port = start(binary, "--threads", "2", stderr=subprocess.PIPE)
    a = connect(port)
    echo(a, b"before the dump")
    proc.send_signal(signal.SIGUSR1)
    # Read the raw fd: a buffered readline would hide lines from select.
    fd = proc.stderr.fileno()
    text = ""
    deadline = time.monotonic() + WAIT
    while not re.search(r"^ +w +polls .*\n(?: +\d+ .*\n)*? +1 .*\n", text, re.M):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536).decode() if ready else ""
        if not chunk:
            proc.kill()
            fail(f"no metrics table on stderr after SIGUSR1: {text!r}")
        text += chunk
    if not re.search(r"^weft: \d+ live tasks$", text, re.M):
        fail(f"no task count line in {text!r}")
    if not re.search(r"^task 0x[0-9a-f]+ echo-conn (?:suspended|queued|running) at \S+conn\.c:\d+ \(\w+\)", text, re.M):
        fail(f"no conn task at an await in {text!r}")
    if not re.search(r"^task 0x[0-9a-f]+ acceptor suspended at ", text, re.M):
        fail(f"no acceptor in {text!r}")
    echo(a, b"after the dump")  # still serving
    stop(proc, signal.SIGTERM)
    a.close()


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
