#!/usr/bin/env python3
"""examples/http/http_test.py WEFT_HTTP - the meson test of weft-http.

Serves a scratch directory on a free port and checks, with plain blocking
sockets: a file served whole, keep-alive, pipelined requests answered in
order, HEAD, 404, path escapes refused (403), an oversized header (431), a
bad method (405) and version (505), HTTP/1.0 and Connection: close ending
the connection, a slow client cut by the request deadline, and the shutdown:
on SIGINT an idle connection is closed at once, a download in flight is
finished, and the server exits 0 with every fd it opened closed; on SIGTERM
with a client that stopped reading, the grace period ends and the
connection is cancelled, still exit 0 and no fd left. SIGUSR1 prints the
task dump and the metrics on stderr, and the server serves on.

Slow clients ("slowloris"), each trickling one byte every 20 ms, never
idle for long: one trickling its request line is cut by --idle-ms, one
trickling its headers by --request-ms, and the slot each held serves the
next client (--max-conns 1).

Nothing sleeps to let the server get somewhere: each wait is for something
the test sees (a line the server prints, bytes, a connection closed, the
server's fd count). The fd count can only be polled; the short sleep paces
that poll. Waits are bounded generously (WAIT); no timing decides a pass.
The helpers shared with echo_test.py are in examples/common/servertest.py.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from servertest import (WAIT, connect, expect_closed, fail, open_fds, sigusr1_report,  # noqa: E402
                        start, stop, trickle_until_closed, wait_fds)

SUMMARY = r"(\d+) cut by a deadline, (\d+) cancelled after the grace period"


def start_http(binary, root, *args):
    return start([binary, "--root", root, *args])



class Reader:
    """Responses from one connection, parsed by Content-Length."""

    def __init__(self, s):
        self.s, self.buf = s, bytearray()

    def fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        end = self.buf.index(b"\r\n\r\n")
        lines = self.buf[:end].decode().split("\r\n")
        del self.buf[:end + 4]
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        length = 0 if head_only else int(headers["content-length"])
        while len(self.buf) < length:
            self.fill()
        body = bytes(self.buf[:length])
        del self.buf[:length]
        return status, headers, body


def get(path, host=True, version="1.1", extra=""):
    h = "Host: t\r\n" if host else ""
    return f"GET {path} HTTP/{version}\r\n{h}{extra}\r\n".encode()


def exchange(port, request, head_only=False):
    s = connect(port)
    s.sendall(request)
    try:
        return Reader(s).response(head_only)
    finally:
        s.close()


def expect_status(port, request, want, what):
    status, _, _ = exchange(port, request)
    if status != want:
        fail(f"{what}: status {status}, expected {want}")


def make_root(tmp):
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "sub"))
    files = {"index.html": b"<p>hello</p>\n", "1k.bin": os.urandom(1024),
             "sub/big.bin": os.urandom(8 << 20)}
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    with open(os.path.join(tmp, "secret"), "wb") as f:
        f.write(b"outside the root\n")
    return root, files


def evict(root, name):
    """Drop the file's pages from the page cache (where the filesystem lets
    us), so that the server's first read of it finds them uncached."""
    fd = os.open(os.path.join(root, name), os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_requests(port, root, files):
    evict(root, "sub/big.bin")
    status, _, body = exchange(port, get("/sub/big.bin"))
    if status != 200 or body != files["sub/big.bin"]:
        fail("GET of an uncached 8 MiB file: wrong status or body")
    status, headers, body = exchange(port, get("/1k.bin"))
    if status != 200 or body != files["1k.bin"] or headers["content-length"] != "1024":
        fail("GET /1k.bin: wrong status, length or body")
    status, headers, body = exchange(port, get("/"))
    if status != 200 or body != files["index.html"] or headers["content-type"] != "text/html":
        fail("GET / did not serve index.html")

    # Keep-alive, then pipelining: six requests in one send, in order.
    s = connect(port)
    r = Reader(s)
    for _ in range(3):
        s.sendall(get("/index.html"))
        if r.response()[2] != files["index.html"]:
            fail("keep-alive: wrong body")
    s.sendall(get("/1k.bin") + b"HEAD /sub/big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
              + get("/missing") + get("/../secret") + get("/index.html") + get("/1k.bin"))
    got = [r.response(), r.response(head_only=True), r.response(), r.response(), r.response(),
           r.response()]
    if [g[0] for g in got] != [200, 200, 404, 403, 200, 200]:
        fail(f"pipelined statuses {[g[0] for g in got]}")
    if got[0][2] != files["1k.bin"] or got[4][2] != files["index.html"] \
            or got[5][2] != files["1k.bin"]:
        fail("pipelined bodies out of order")
    if got[1][1]["content-length"] != str(len(files["sub/big.bin"])) or r.buf:
        fail("HEAD: wrong Content-Length, or a body was sent")
    s.close()


def test_refusals(port):
    for path in ("/../secret", "/%2e%2e/secret", "/sub/..%2F..%2Fsecret", "//etc/passwd",
                 "/%2Fetc/passwd", "/sub/../../secret"):
        expect_status(port, get(path), 403, f"path escape {path}")
    expect_status(port, get("/nope.html"), 404, "missing file")
    expect_status(port, get("/sub"), 403, "a directory")
    expect_status(port, get("/a%00b"), 400, "an encoded NUL")
    expect_status(port, get("/", host=False), 400, "HTTP/1.1 without Host")
    expect_status(port, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", 405,
                  "POST")
    expect_status(port, get("/", version="2.0"), 505, "HTTP/2.0 in text")
    expect_status(port, get("/", extra="Content-Length: 5\r\n"), 413, "a GET with a body")
    big = "X-Filler: " + "x" * 20000 + "\r\n"
    expect_status(port, get("/", extra=big), 431, "a 20 KB header line")
    many = "".join(f"X-H{i}: {'y' * 100}\r\n" for i in range(100))
    expect_status(port, get("/", extra=many), 431, "10 KB of headers")
    expect_status(port, get("/" + "a" * 9000), 414, "a 9 KB request line")


def test_connection_endings(port):
    for request, what in ((get("/", version="1.0", host=False), "HTTP/1.0"),
                          (get("/", extra="Connection: close\r\n"), "Connection: close")):
        s = connect(port)
        s.sendall(request)
        r = Reader(s)
        status, headers, _ = r.response()
        if status != 200 or headers["connection"] != "close":
            fail(f"{what}: status {status}, Connection: {headers['connection']}")
        expect_closed(s, what)
        s.close()


def test_slow_client(port):
    """A client that trickles its request is cut by --request-ms."""
    s = connect(port)
    s.sendall(b"GET / HTTP/1.1\r\nHo")
    start = time.monotonic()
    expect_closed(s, "slow client")
    s.close()
    print(f"slow client closed after {time.monotonic() - start:.2f} s")


def test_sigint_drain(binary, root, files):
    proc, port = start_http(binary, root, "--threads", "2", "--request-ms", "3000")
    baseline = open_fds(proc)
    test_requests(port, root, files)
    test_refusals(port)
    test_connection_endings(port)
    test_slow_client(port)
    wait_fds(proc, baseline, "after the connections closed")

    idle = connect(port)                    # keep-alive, waiting for a request
    idle.sendall(get("/index.html"))
    Reader(idle).response()
    dl = connect(port)                      # a download in flight at SIGINT
    dl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    dl.sendall(get("/sub/big.bin"))
    r = Reader(dl)
    while len(r.buf) < 65536:
        r.fill()
    proc.send_signal(signal.SIGINT)
    expect_closed(idle, "idle connection at SIGINT")
    status, headers, body = r.response()
    if status != 200 or body != files["sub/big.bin"] or headers["connection"] != "keep-alive":
        fail("the download in flight at SIGINT was not finished")
    expect_closed(dl, "download after SIGINT")
    timeouts, cut = stop(proc, signal.SIGINT, SUMMARY)
    if timeouts < 1 or cut != 0:
        fail(f"summary: {timeouts} cut by a deadline (slow client), {cut} cancelled")


def test_sigterm_grace(binary, root):
    proc, port = start_http(binary, root, "--threads", "1", "--grace-ms", "300")
    stuck = connect(port)                   # stops reading its download
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    stuck.sendall(get("/sub/big.bin"))
    Reader(stuck).fill()
    timeouts, cut = stop(proc, signal.SIGTERM, SUMMARY)
    if cut != 1:
        fail(f"a stuck download was not cancelled after the grace period ({cut})")
    expect_closed(stuck, "stuck download after the grace period", drain=True)


def test_limits(binary, root):
    """--max-conns: a connection over the limit waits in the backlog, unread,
    until a slot frees; --conn-ms: a busy keep-alive connection still ends."""
    proc, port = start_http(binary, root, "--threads", "1", "--max-conns", "1",
                       "--conn-ms", "1500")
    a = connect(port)
    ra = Reader(a)
    a.sendall(get("/index.html"))
    ra.response()
    b = connect(port)                       # over the limit: not accepted yet
    b.sendall(get("/index.html"))
    a.sendall(get("/index.html"))           # served after b's request arrived
    ra.response()
    b.setblocking(False)
    try:
        if b.recv(1):
            fail("a connection over the limit was served while the slot was taken")
    except BlockingIOError:
        pass
    b.setblocking(True)
    b.settimeout(WAIT)
    start_a = time.monotonic()
    try:                                    # a keeps asking until --conn-ms ends it
        while True:
            a.sendall(get("/index.html"))
            ra.response()
    except (EOFError, ConnectionError):
        pass
    print(f"busy connection ended after {time.monotonic() - start_a:.2f} s")
    if Reader(b).response()[0] != 200:
        fail("the waiting connection was not served once the slot freed")
    a.close()
    b.close()
    timeouts, _ = stop(proc, signal.SIGTERM, SUMMARY)
    if timeouts < 1:
        fail("the connection deadline was not counted")


def test_slowloris(binary, root):
    """Clients trickling one byte every 20 ms, never idle for long, are cut
    when their phase's deadline scope ends (the request line: --idle-ms;
    the headers: --request-ms), and the one slot they held serves the next
    client. The connection deadline is off, so only the phase can end them.
    A scope never ends before its deadline, nor starts before the client
    connects: the time, from before the connect, is checked from below."""
    proc, port = start_http(binary, root, "--threads", "1", "--max-conns", "1",
                            "--idle-ms", "400", "--request-ms", "600", "--conn-ms", "0")
    baseline = open_fds(proc)
    for what, prefix, trickle, bound in (
            ("request line", b"", b"GET /" + b"a" * 100, 0.4),
            ("headers", b"GET / HTTP/1.1\r\nHost: t\r\n", b"X-Slow: " + b"a" * 100, 0.6)):
        began = time.monotonic()
        s = connect(port)
        s.sendall(prefix)
        got = trickle_until_closed(s, trickle, 0.02)
        took = time.monotonic() - began
        s.close()
        print(f"slowloris trickling its {what} cut after {took:.2f} s")
        if got or took < bound:
            fail(f"slowloris ({what}): {got} bytes answered, cut after {took:.2f} s")
        wait_fds(proc, baseline, f"after the slowloris ({what}) was cut")
        if exchange(port, get("/index.html"))[0] != 200:
            fail(f"the slot held by the slowloris ({what}) did not serve the next client")
    timeouts, _ = stop(proc, signal.SIGTERM, SUMMARY)
    if timeouts < 2:
        fail(f"{timeouts} connections cut by a deadline, expected the 2 slowloris at least")


def test_sigusr1_dump(binary, root):
    """SIGUSR1 prints the task dump (a keep-alive connection's task, named,
    at an await's file:line) and the metrics, and the server carries on."""
    proc, port = start([binary, "--root", root, "--threads", "2"], stderr=subprocess.PIPE)
    s = connect(port)
    s.sendall(get("/index.html"))
    if not s.recv(65536).startswith(b"HTTP/1.1 200"):
        fail("no 200 before the dump")
    text = sigusr1_report(proc)
    if not re.search(r"^task 0x[0-9a-f]+ http-conn (?:suspended|queued|running) at \S+\.c:\d+ ",
                     text, re.M):
        fail(f"no http-conn task at an await in {text!r}")
    s.close()
    if exchange(port, get("/index.html"))[0] != 200:
        fail("a request after the dump was not served")
    stop(proc, signal.SIGTERM, SUMMARY)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: http_test.py WEFT_HTTP")
    with tempfile.TemporaryDirectory() as tmp:
        root, files = make_root(tmp)
        test_sigint_drain(sys.argv[1], root, files)
        test_sigterm_grace(sys.argv[1], root)
        test_limits(sys.argv[1], root)
        test_slowloris(sys.argv[1], root)
        test_sigusr1_dump(sys.argv[1], root)
    print("http_test: ok")


if __name__ == "__main__":
    main()
