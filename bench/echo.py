#!/usr/bin/env python3
"""bench/echo.py - one run of the echo workload against one server.

    bench/echo.py --client ECHO_CLIENT --server SERVER --size S
                  [--conns C] [--seconds D] [--warmup W]

Starts SERVER (weft-echo, tokio-echo or go-echo: each takes --port 0
--threads 1 and prints "listening on 127.0.0.1:<port>") with one server
thread, drives it with the closed-loop client bench/peers/echo-client (C
connections, S-byte messages, D seconds measured after W of warmup), stops it
with SIGTERM (it must exit 0) and prints, like every other workload
(docs/benchmarks.md):

    echo_<S> <server_cpu_seconds> <messages> <messages_per_server_cpu_second>

The figure of docs/benchmarks.md is server CPU time per message (user+sys of the
whole server process, all its threads, over exactly the client's measured
window: the client samples the server's CPU clock at its edges, so start-up,
warmup and shutdown are left out). Its inverse, messages per server
CPU-second, is printed so that higher is better, as for every other workload.
On stderr, for bench/report.py:

    peak_rss_kib N        the server's VmHWM, read just before it is stopped
    wall_ops_per_s N      messages per wall-clock second
    server_busy F         server CPU seconds per wall second over the window
    client_busy F         the same for the client

A client busier than its server (client_busy near 1.0, server_busy well
below) means the client was the bottleneck; report.py warns about it. With
two or more CPUs the server is pinned to one and the client to another.
"""
import argparse
import re
import subprocess
import sys

from servers import choose_cpus, peak_rss_kib, pin_to, start_server, stop_server


CLIENT_CPU = re.compile(r"^echo-client: cpu ([\d.]+) s over ([\d.]+) s wall", re.M)
SERVER_CPU = re.compile(r"^echo-client: server cpu ([\d.]+) s \(user [\d.]+ s, "
                        r"sys [\d.]+ s\) over ([\d.]+) s wall", re.M)


def die(msg):
    sys.exit(f"echo: {msg}")


def workload_name(size):
    """echo_64B, echo_1KiB: the names bench/report.py knows the rows by."""
    return f"echo_{size // 1024}KiB" if size % 1024 == 0 else f"echo_{size}B"


def run_client(a, port, server_pid, cpu):
    """The client's figures over its measured window, or exits with why not."""
    args = [a.client, "--port", str(port), "--conns", str(a.conns), "--size", str(a.size),
            "--seconds", str(a.seconds), "--warmup", str(a.warmup),
            "--server-pid", str(server_pid)]
    proc = subprocess.run(args, capture_output=True, text=True, preexec_fn=pin_to(cpu),
                          timeout=a.seconds + a.warmup + 60)
    fields = proc.stdout.split()
    ccpu, scpu = CLIENT_CPU.search(proc.stderr), SERVER_CPU.search(proc.stderr)
    if proc.returncode != 0 or len(fields) != 4 or fields[0] != "echo" or not ccpu or not scpu:
        return None, f"exit {proc.returncode}; stdout {proc.stdout!r}; stderr:\n{proc.stderr}"
    messages, server_cpu = int(fields[2]), float(scpu.group(1))
    if messages == 0 or server_cpu <= 0:
        return None, "no message was echoed in the measured window"
    return {
        "messages": messages,
        "wall_ops_per_s": int(fields[3]),
        "server_cpu": server_cpu,
        "server_busy": server_cpu / float(scpu.group(2)),
        "client_busy": float(ccpu.group(1)) / float(ccpu.group(2)),
    }, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--client", required=True, help="bench/peers/echo-client binary")
    ap.add_argument("--server", required=True, help="weft-echo, tokio-echo or go-echo")
    ap.add_argument("--size", type=int, required=True, help="message size in bytes")
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5, help="measured window")
    ap.add_argument("--warmup", type=float, default=1)
    a = ap.parse_args()

    server_cpu, client_cpu = choose_cpus()
    server, port = start_server("echo", a.server, 1, preexec_fn=pin_to(server_cpu))
    try:
        r, error = run_client(a, port, server.pid, client_cpu)
        rss = peak_rss_kib(server.pid)
    except BaseException:
        server.kill()
        raise
    if error:
        server.kill()
        _, err = server.communicate()
        die(f"client against {a.server} ({a.size} B) failed: {error}\nserver stderr:\n{err}")
    stop_server("echo", a.server, server)
    print(f"{workload_name(a.size)} {r['server_cpu']:.6f} {r['messages']} "
          f"{round(r['messages'] / r['server_cpu'])}")
    print(f"peak_rss_kib {rss}\nwall_ops_per_s {r['wall_ops_per_s']}\n"
          f"server_busy {r['server_busy']:.3f}\nclient_busy {r['client_busy']:.3f}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
