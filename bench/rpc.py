#!/usr/bin/env python3
"""bench/rpc.py - one run of an RPC workload against one server.

    bench/rpc.py --client RPC_CLIENT --server SERVER --rate R --name NAME
                 [--threads N] [--conns C] [--seconds D] [--warmup W] [--drain S]
                 [--client-threads T] [--client-priority fifo|normal]

Starts SERVER (weft-rpc, tokio-rpc or go-rpc: each takes --port 0 --threads N
and prints "listening on 127.0.0.1:<port>") with N worker threads (default
2), drives it with the open-loop client bench/peers/rpc-client at R requests
per second over C connections (default 32; D seconds measured after W of
warmup), stops it with SIGTERM (it must exit 0) and prints, like every other
workload (docs/benchmarks.md):

    <NAME> <seconds> <replies> <replies_per_second>

and on stderr, for bench/report.py, "key value" lines:

    p50_us p99_us p999_us max_us   latency from each request's due time
                                   (coordinated omission corrected)
    lag_p99_us lag_max_us          how late the client sent (its schedule)
    unanswered N                   measured requests never answered
    offered N                      the requested rate
    achieved N                     replies per second in the window
    server_cpu_per_s F             server CPU seconds per wall second
                                   (user+sys of all its threads)
    cpu_us_per_req F               server CPU microseconds per reply
    client_busy F                  client CPU seconds per wall second
    client_fifo 0|1                whether the client ran SCHED_FIFO
    peak_rss_kib N                 the server's VmHWM before it is stopped

CPU is measured over exactly the client's measured window (the client reads
the server's process CPU clock at its edges). Nothing is pinned: on a small
machine server and client share the CPUs, which is why the client's own CPU
and its send lag are reported beside every figure. The client runs under
SCHED_FIFO (priority 1) when the process may set it (--client-priority
normal turns that off), so that a busy machine delays its sends less; it
sleeps between sends, so it cannot starve anything. client_fifo 1 or 0 on
stderr says which it got.
"""
import argparse
import os
import subprocess
import sys

from servers import peak_rss_kib, start_server, stop_server

KEYS = ("p50_us", "p99_us", "p999_us", "max_us", "lag_p50_us", "lag_p99_us", "lag_max_us",
        "measured", "unanswered", "wall_s", "client_cpu_s", "server_cpu_s")


def die(msg):
    sys.exit(f"rpc: {msg}")


def fifo_if_allowed():
    """preexec_fn: SCHED_FIFO priority 1 for the client, if permitted."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError:
        pass


def run_client(a, port, server_pid):
    args = [a.client, "--port", str(port), "--rate", str(a.rate), "--conns", str(a.conns),
            "--seconds", str(a.seconds), "--warmup", str(a.warmup), "--drain", str(a.drain),
            "--threads", str(a.client_threads), "--server-pid", str(server_pid)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=fifo_if_allowed if a.client_priority == "fifo" else None)
    try:
        fifo = os.sched_getscheduler(proc.pid) == os.SCHED_FIFO
    except OSError:
        fifo = False
    try:
        out, err = proc.communicate(timeout=a.seconds + a.warmup + a.drain + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, "the client did not finish in time"
    proc = subprocess.CompletedProcess(args, proc.returncode, out, err)
    fields = proc.stdout.split()
    values = {}
    for line in proc.stderr.splitlines():
        key, _, value = line.partition(" ")
        if key in KEYS:
            values[key] = float(value)
    if proc.returncode != 0 or len(fields) != 4 or fields[0] != "rpc" or \
            any(k not in values for k in KEYS):
        return None, f"exit {proc.returncode}; stdout {proc.stdout!r}; stderr:\n{proc.stderr}"
    values["replies"] = int(fields[2])
    values["client_fifo"] = int(fifo)
    if values["replies"] == 0 or values["server_cpu_s"] <= 0:
        return None, "no reply was read in the measured window"
    return values, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--client", required=True, help="bench/peers/rpc-client binary")
    ap.add_argument("--server", required=True, help="weft-rpc, tokio-rpc or go-rpc")
    ap.add_argument("--rate", type=int, required=True, help="requests per second, offered")
    ap.add_argument("--name", required=True, help="the workload name to print")
    ap.add_argument("--threads", type=int, default=2, help="server worker threads")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--client-threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5, help="measured window")
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--drain", type=float, default=2)
    ap.add_argument("--client-priority", choices=("fifo", "normal"), default="fifo")
    a = ap.parse_args()

    server, port = start_server("rpc", a.server, a.threads)
    try:
        r, error = run_client(a, port, server.pid)
        rss = peak_rss_kib(server.pid)
    except BaseException:
        server.kill()
        raise
    if error:
        server.kill()
        _, err = server.communicate()
        die(f"client against {a.server} at {a.rate}/s failed: {error}\nserver stderr:\n{err}")
    stop_server("rpc", a.server, server)
    wall = r["wall_s"]
    print(f"{a.name} {wall:.6f} {r['replies']} {round(r['replies'] / wall)}")
    extras = {
        "p50_us": r["p50_us"], "p99_us": r["p99_us"], "p999_us": r["p999_us"],
        "max_us": r["max_us"], "lag_p99_us": r["lag_p99_us"], "lag_max_us": r["lag_max_us"],
        "unanswered": int(r["unanswered"]), "offered": a.rate,
        "achieved": round(r["replies"] / wall),
        "server_cpu_per_s": f"{r['server_cpu_s'] / wall:.4f}",
        "cpu_us_per_req": f"{1e6 * r['server_cpu_s'] / r['replies']:.3f}",
        "client_busy": f"{r['client_cpu_s'] / wall:.3f}",
        "client_fifo": r["client_fifo"],
        "peak_rss_kib": rss,
    }
    print("\n".join(f"{k} {v}" for k, v in extras.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
