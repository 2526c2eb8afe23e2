"""examples/common/servertest.py - what the tests of weft's example servers
(echo_test.py, http_test.py) do alike: start a server on a free port, connect,
wait for a connection to be closed or for the server's fds to come back,
play a slow client, stop the server with a signal and read its summary.

Nothing here sleeps to let the server get somewhere: each wait is for
something the test sees (a line the server prints, bytes, a connection
closed, the server's fd count). Every wait is bounded by WAIT, a guard
against hangs: no timing decides a pass.
"""
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

WAIT = 20.0  # seconds: the bound on every wait

_servers = []  # every server started, killed by fail() if still running


def fail(msg):
    """End the test, naming it (echo_test, http_test) in the message. A
    server still running is killed: it holds the test's stderr open, and
    meson would wait for it until the test's timeout."""
    for proc in _servers:
        if proc.poll() is None:
            proc.kill()
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    sys.exit(f"{name}: FAIL: {msg}")


def start(argv, stderr=None):
    """Run the server (argv, plus --port 0) and wait for its first line,
    'listening on 127.0.0.1:<port>'. Returns the process and the port.
    stderr=subprocess.PIPE keeps the server's stderr for sigusr1_report."""
    proc = subprocess.Popen([*argv, "--port", "0"], stdout=subprocess.PIPE, stderr=stderr,
                            text=True)
    _servers.append(proc)
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


def expect_closed(s, what, drain=False):
    """The server must end the connection (EOF or reset) within WAIT. Bytes
    still arriving first are read and dropped with drain, else they fail."""
    try:
        data = s.recv(65536)
        while data and drain:
            data = s.recv(65536)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        fail(f"{what}: the server did not close the connection")
    if data:
        fail(f"{what}: unexpected data {data[:40]!r}")


def trickle_until_closed(s, data, every):
    """Play slowloris on s: send data one byte every `every` seconds, cycling
    through it, and read what comes back, until the server ends the
    connection. The wait between bytes is a select on s, so the end is seen
    at once. Returns how many bytes were read back."""
    began = time.monotonic()
    got, i = 0, 0
    while time.monotonic() - began < WAIT:
        try:
            s.sendall(data[i % len(data):i % len(data) + 1])
        except (BrokenPipeError, ConnectionResetError):
            return got
        i += 1
        pause = time.monotonic() + every
        while (left := pause - time.monotonic()) > 0:
            if not select.select([s], [], [], left)[0]:
                continue
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return got
            got += len(chunk)
    fail(f"a trickling client kept its connection for {WAIT} s")


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


def sigusr1_report(proc):
    """Send SIGUSR1 to a server started with stderr=subprocess.PIPE and read
    its stderr until the metrics table (after the task dump) is complete,
    through worker 1. Returns the text."""
    proc.send_signal(signal.SIGUSR1)
    fd = proc.stderr.fileno()   # raw: a buffered readline would hide lines from select
    text = ""
    deadline = time.monotonic() + WAIT
    while not re.search(r"^ +w +polls .*\n(?: +\d+ .*\n)*? +1 .*\n", text, re.M):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536).decode() if ready else ""
        if not chunk:
            fail(f"no metrics table on stderr after SIGUSR1: {text!r}")
        text += chunk
    if not re.search(r"^weft: \d+ live tasks$", text, re.M):
        fail(f"no task count line in {text!r}")
    if not re.search(r"^task 0x[0-9a-f]+ acceptor suspended at ", text, re.M):
        fail(f"no acceptor in {text!r}")
    return text


def stop(proc, sig, summary):
    """Send sig and wait for the server to exit 0 with a summary line that
    matches the regular expression summary and ends in '0 fds left open'.
    Returns summary's groups as integers."""
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail(f"the server did not exit after {sig.name}")
    print(out.strip())
    if proc.returncode != 0:
        fail(f"the server exited with {proc.returncode} after {sig.name}")
    m = re.search(summary, out)
    fds = re.search(r"(-?\d+) fds left open", out)
    if not m or not fds:
        fail(f"no summary line in {out!r}")
    if int(fds.group(1)) != 0:
        fail(f"{fds.group(1)} fds were still open when the server exited")
    return [int(g) for g in m.groups()]
