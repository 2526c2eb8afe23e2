"""bench/servers.py - pinning, starting and stopping the benchmark servers
that bench/echo.py, bench/http.py and bench/rpc.py measure (weft, tokio and
Go alike): each is started with --port 0, must print "listening on
127.0.0.1:PORT", and must exit 0 on SIGTERM. Failures raise SystemExit with a message naming the server."""

import os
import re
import select
import signal
import subprocess
import sys

START_TIMEOUT = 10  # seconds for a server to print its port
STOP_TIMEOUT = 10   # seconds for a server to exit after SIGTERM


def pin_to(cpu):
    """A preexec_fn that pins the child (and every thread it starts) to cpu."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def choose_cpus():
    """(server cpu, client cpu): the last two allowed CPUs, or (None, None)."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        print("bench: fewer than 2 CPUs; server and client are not pinned", file=sys.stderr)
        return None, None
    return allowed[-1], allowed[-2]


def start_server(tool, binary, threads, preexec_fn=None, extra=()):
    """Start binary with `threads` workers (and extra arguments); return
    (process, port)."""
    proc = subprocess.Popen([binary, "--port", "0", "--threads", str(threads), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec_fn)
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
    if not m:
        proc.kill()
        _, err = proc.communicate()
        raise SystemExit(f"{tool}: {binary} did not report its port (got {line!r}):\n{err}")
    return proc, int(m.group(1))


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def stop_server(tool, binary, proc):
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SystemExit(f"{tool}: {binary} did not exit within {STOP_TIMEOUT} s of SIGTERM")
    if proc.returncode != 0:
        raise SystemExit(f"{tool}: {binary} exited with status {proc.returncode} "
                         f"after SIGTERM:\n{err}")
