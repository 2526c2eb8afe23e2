#!/usr/bin/env python3
"""bench/http.py - one run of the http workload against one server.

    bench/http.py --server weft|nginx --binary PATH --size S
                  [--conns C] [--seconds D] [--warmup W] [--name NAME]

Serves one file of S bytes from a scratch directory with one worker - weft's
examples/http (weft-http --threads 1, WEFT_WORKERS=1) or nginx
(worker_processes 1, master_process off, from a config written into the
scratch directory: no system service, no root, a free port) - and drives it
with wrk (one thread, C keep-alive connections, D seconds measured after a
W-second warmup run). The server is pinned to one CPU and wrk to another
when there are two. Prints, like every other workload (docs/benchmarks.md):

    <name> <server_cpu_seconds> <requests> <requests_per_server_cpu_second>

and on stderr, for bench/report.py:

    peak_rss_kib N        the server's VmHWM, read just before it is stopped
    wall_ops_per_s N      requests per wall-clock second (per worker: there
                          is one)
    server_busy F         server CPU seconds per wall second over the window
    client_busy F         the same for wrk
    cpu_us_per_req F      server CPU microseconds per request

Server CPU is user+sys of the whole server process (all its threads) from
/proc/PID/stat, read just before and after the measured wrk run. A run with
socket errors or non-2xx responses fails.
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from servers import choose_cpus, peak_rss_kib, pin_to, start_server, stop_server

TICKS = os.sysconf("SC_CLK_TCK")
NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    types {{ application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def die(msg):
    sys.exit(f"http: {msg}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS   # utime, stime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port, what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die(f"{what} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    proc.kill()
    die(f"{what} did not listen on port {port}")


def start_nginx(binary, scratch, root, cpu):
    """nginx, unprivileged, configured in scratch; (process, port)."""
    port = free_port()
    conf = os.path.join(scratch, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=scratch, port=port, root=root))
    proc = subprocess.Popen([binary, "-p", scratch, "-c", conf, "-e",
                             os.path.join(scratch, "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=pin_to(cpu))
    wait_listening(proc, port, "nginx")
    return proc, port


def stop_nginx(proc):
    proc.send_signal(signal.SIGQUIT)        # graceful, as nginx -s quit
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        die("nginx did not exit within 10 s of SIGQUIT")


def wrk(a, url, seconds, cpu):
    """Run wrk; (requests, its measured window in seconds, wrk CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run([a.wrk, "-t1", f"-c{a.conns}", f"-d{seconds}s", url],
                          capture_output=True, text=True, preexec_fn=pin_to(cpu),
                          timeout=seconds + 60)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", proc.stdout)
    if proc.returncode != 0 or not m or "Non-2xx" in proc.stdout or "Socket errors" in proc.stdout:
        die(f"wrk against {url} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    window = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    return int(m.group(1)), window or wall, used


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", choices=("weft", "nginx"), required=True)
    ap.add_argument("--binary", required=True, help="weft-http, or nginx")
    ap.add_argument("--size", type=int, default=1024, help="the file's size in bytes")
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--name", default="http_1KiB")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    a = ap.parse_args()

    server_cpu, client_cpu = choose_cpus()
    with tempfile.TemporaryDirectory(prefix="weft-http-bench-") as scratch:
        root = os.path.join(scratch, "root")
        os.mkdir(root)
        with open(os.path.join(root, "file.bin"), "wb") as f:
            f.write(os.urandom(a.size))
        if a.server == "weft":
            os.environ["WEFT_WORKERS"] = "1"
            proc, port = start_server("http", a.binary, 1, preexec_fn=pin_to(server_cpu),
                                      extra=["--root", root])
        else:
            proc, port = start_nginx(a.binary, scratch, root, server_cpu)
        url = f"http://127.0.0.1:{port}/file.bin"
        try:
            wrk(a, url, max(1, round(a.warmup)), client_cpu)
            cpu0 = cpu_seconds(proc.pid)
            requests, wall, client = wrk(a, url, max(1, round(a.seconds)), client_cpu)
            cpu = cpu_seconds(proc.pid) - cpu0
            rss = peak_rss_kib(proc.pid)
        except BaseException:
            proc.kill()
            raise
        if a.server == "weft":
            stop_server("http", a.binary, proc)
        else:
            stop_nginx(proc)
    if cpu <= 0:
        die("no server CPU time was measured")
    print(f"{a.name} {cpu:.6f} {requests} {round(requests / cpu)}")
    print(f"peak_rss_kib {rss}\nwall_ops_per_s {round(requests / wall)}\n"
          f"server_busy {cpu / wall:.3f}\nclient_busy {client / wall:.3f}\n"
          f"cpu_us_per_req {1e6 * cpu / requests:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
