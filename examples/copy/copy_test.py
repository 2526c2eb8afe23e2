#!/usr/bin/env python3
"""examples/copy/copy_test.py WEFT_COPY - the meson test of weft-copy.

Copies a file (checked byte for byte, mode kept, no partial file left),
overwrites an existing destination, refuses a missing source, a directory
and a destination whose partial file already exists (exit 1, destination
untouched), and is interrupted by SIGINT in the middle of a 128 MiB copy
(exit 130, the old destination untouched, the partial file removed).

The interruption is made deterministic with SIGSTOP: the test polls for the
partial file (the copy has started), stops the process, checks the copy is
not complete, then sends SIGINT and SIGCONT. The poll's sleep only paces it;
waits are bounded (WAIT).
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

WAIT = 30.0


def fail(msg):
    sys.exit(f"copy_test: FAIL: {msg}")


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=WAIT)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def test_copies(binary, tmp):
    src, dst = os.path.join(tmp, "src"), os.path.join(tmp, "dst")
    data = os.urandom(5 << 20) + b"tail"
    write(src, data, 0o640)
    for what in ("new destination", "existing destination"):
        p = run(binary, src, dst)
        if p.returncode != 0 or read(dst) != data:
            fail(f"{what}: exit {p.returncode}, stderr {p.stderr!r}")
        if os.stat(dst).st_mode & 0o777 != 0o640 or os.path.exists(dst + ".partial"):
            fail(f"{what}: mode not kept, or a partial file left")
    write(os.path.join(tmp, "empty"), b"")
    if run(binary, os.path.join(tmp, "empty"), dst).returncode != 0 or read(dst) != b"":
        fail("empty file")


def test_refusals(binary, tmp):
    src, dst = os.path.join(tmp, "src"), os.path.join(tmp, "dst")
    write(src, b"source")
    write(dst, b"old")
    for args, what in (((os.path.join(tmp, "missing"), dst), "missing source"),
                       ((tmp, dst), "a directory as source"),
                       ((src, os.path.join(tmp, "no", "such", "dir")), "missing directory")):
        p = run(binary, *args)
        if p.returncode != 1 or "left unchanged" not in p.stderr or read(dst) != b"old":
            fail(f"{what}: exit {p.returncode}, stderr {p.stderr!r}")
    write(dst + ".partial", b"another copy's")
    p = run(binary, src, dst)
    if p.returncode != 1 or read(dst) != b"old" or read(dst + ".partial") != b"another copy's":
        fail(f"partial file in the way: exit {p.returncode}, or a file was touched")
    os.unlink(dst + ".partial")
    if run(binary, "only-one-arg").returncode != 2:
        fail("bad usage must exit 2")


def test_sigint(binary, tmp):
    src, dst = os.path.join(tmp, "big"), os.path.join(tmp, "dst")
    with open(src, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(128):
            f.write(chunk)
    write(dst, b"old")
    proc = subprocess.Popen([binary, src, dst], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT
    while not os.path.exists(dst + ".partial"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            fail("the copy never created its partial file")
        time.sleep(0.001)
    proc.send_signal(signal.SIGSTOP)
    if not os.path.exists(dst + ".partial") or read(dst) != b"old":
        proc.kill()
        fail("the copy finished before it could be interrupted; use a larger file")
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGCONT)
    try:
        _, err = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("weft-copy did not exit after SIGINT")
    print(err.strip())
    if proc.returncode != 130 or read(dst) != b"old" or os.path.exists(dst + ".partial"):
        fail(f"SIGINT: exit {proc.returncode}, destination or partial file not as expected")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: copy_test.py WEFT_COPY")
    with tempfile.TemporaryDirectory() as tmp:
        test_copies(sys.argv[1], tmp)
        test_refusals(sys.argv[1], tmp)
        test_sigint(sys.argv[1], tmp)
    print("copy_test: ok")


if __name__ == "__main__":
    main()
