#!/usr/bin/env python3
"""bench/report.py - run weft-bench and its peers side by side and report.

Every workload runs for each runtime in turn (weft, tokio, go, weft, tokio,
go, ...) `--reps` times at the same thread count. The report gives, per
workload: the median ops/s of each runtime, weft's ratio to each peer (the
median of the per-round ratios, with their min-max spread), and each runtime's
peak RSS. It is printed as a table and written as CSV, Markdown, and a plot of
the ratios (PNG and SVG, with gnuplot when it is installed).

Two kinds of row say more than ops/s:
  - echo_64B, echo_1KiB (given --echo-client and the echo servers) run
    bench/echo.py: one server thread, 64 connections; their "ops/s" is
    messages per server CPU-second (1e6 / CPU microseconds per message), so
    higher is better as everywhere else. A second table gives messages per
    wall-clock second and how busy server and client were.
  - idle_tasks also reports bytes per idle task (RSS growth / tasks), shown in
    the "B/task" columns.
  - http_1KiB (given --weft-http; nginx's column given --nginx) runs
    bench/http.py: examples/http's weft-http against nginx, one worker each,
    the same 1 KiB file over keep-alive connections from wrk. Its peer is
    nginx, not tokio or Go, so it has a table of its own: requests per
    wall-clock second, server CPU per request, and weft/nginx of both.

The latency section (given --weft-wake and/or --rpc-client with the RPC
servers; docs/benchmarks.md) has rows whose figures are not ops/s:
  - wake_1, wake_8: weft-wake / tokio-wake / go-wake, wake latency
    percentiles under a 60% background load;
  - rpc_10k, rpc_20k, rpc_40k: bench/rpc.py, request latency percentiles at
    an offered rate, from the open-loop rpc-client (2 server threads);
  - cpu_1k, cpu_5k: the same at low rates, for the server's CPU per request;
  - timer_stall: weft-bench / tokio-bench / go-bench, how late sleeps end
    while one worker at a time is stuck in a 50 ms poll (p50, p99, max).
Their ratios are weft/peer of p99 latency or of CPU per request: LOWER is
better there. They get their own tables in results.md and their own plot
(latency.png / latency.svg), so the throughput table and ratios.png keep
their meaning.

--scaling 1,2,4 runs the throughput workloads (weft-bench's) at each of those
thread counts instead, and writes <name>.md / .csv and scaling.png / .svg
with each runtime's ops/s and weft's ratios per thread count.
"""
import argparse
import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys

RUNTIMES = ("weft", "tokio", "go")
HERE = os.path.dirname(os.path.abspath(__file__))
ECHO_PY = os.path.join(HERE, "echo.py")
HTTP_PY = os.path.join(HERE, "http.py")
HTTP_SIZES = {"http_1KiB": 1024}
RPC_PY = os.path.join(HERE, "rpc.py")
ECHO_SIZES = {"echo_64B": 64, "echo_1KiB": 1024}
WAKE = ("wake_1", "wake_8")
RPC_RATES = {"rpc_10k": 10000, "rpc_20k": 20000, "rpc_40k": 40000}
CPU_RATES = {"cpu_1k": 1000, "cpu_5k": 5000}
# Latency rows that weft-bench and its peers run like any other workload.
STALL = ("timer_stall",)
LATENCY = WAKE + tuple(RPC_RATES) + tuple(CPU_RATES) + STALL
# "key value" lines a run may print on stderr besides its result line.
EXTRAS = ("peak_rss_kib", "bytes_per_task", "wall_ops_per_s", "server_busy", "client_busy",
          # latency rows (weft-wake and its peers, bench/rpc.py)
          "p50_us", "p99_us", "p999_us", "max_us", "load_busy", "late_p99_us", "late_max_us",
          "missed", "lag_p99_us", "lag_max_us", "unanswered", "offered", "achieved",
          "server_cpu_per_s", "cpu_us_per_req", "client_fifo")


def latency_times(a):
    """(measured seconds, warmup seconds) of a latency run at a.scale."""
    return (5.0, 1.0) if a.scale >= 1.0 else (1.0, 0.3)


def command(a, runtime, workload):
    """The command line of one run of workload on runtime."""
    if workload in WAKE:
        seconds, warmup = latency_times(a)
        return [a.peak_rss, getattr(a, f"{runtime}_wake"), "--threads", str(a.threads),
                "--seconds", str(seconds), "--warmup", str(warmup),
                "--calibrate", str(min(1.0, warmup)), workload]
    if workload in RPC_RATES or workload in CPU_RATES:
        seconds, warmup = latency_times(a)
        rate = RPC_RATES.get(workload) or CPU_RATES[workload]
        return [sys.executable, RPC_PY, "--client", a.rpc_client,
                "--server", getattr(a, f"{runtime}_rpc"), "--rate", str(rate),
                "--name", workload, "--threads", str(a.threads),
                "--seconds", str(seconds), "--warmup", str(warmup)]
    if workload in HTTP_SIZES:
        # One worker each; the windows shrink with --scale as echo's do.
        return [sys.executable, HTTP_PY, "--server", runtime,
                "--binary", getattr(a, f"{runtime}_http"), "--name", workload,
                "--size", str(HTTP_SIZES[workload]),
                "--seconds", str(max(1.0, 5 * a.scale)),
                "--warmup", str(min(1.0, max(0.5, a.scale)))]
    if workload in ECHO_SIZES:
        # One server thread whatever --threads says; the window shrinks with
        # --scale (a quick run measures 1 s after 0.5 s of warmup).
        return [sys.executable, ECHO_PY, "--client", a.echo_client,
                "--server", getattr(a, f"{runtime}_echo"),
                "--size", str(ECHO_SIZES[workload]),
                "--seconds", str(max(1.0, 5 * a.scale)),
                "--warmup", str(min(1.0, max(0.5, a.scale)))]
    args = [a.peak_rss, getattr(a, runtime), "--threads", str(a.threads)]
    if a.scale != 1.0:
        args += ["--scale", str(a.scale)]
    return args + [workload]


def run(a, runtime, workload):
    """Run once; return (ops/s, {extra: value})."""
    args = command(a, runtime, workload)
    if getattr(a, "verbose", False):
        print("\n  " + " ".join(args), file=sys.stderr)
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"report: {os.path.basename(args[1])} {workload} ({runtime}) failed "
                 f"(exit {proc.returncode}):\n{proc.stderr}")
    fields = proc.stdout.split()
    if len(fields) != 4 or fields[0] != workload:
        sys.exit(f"report: unexpected output from {runtime} {workload}: {proc.stdout!r}")
    extras = {}
    for line in proc.stderr.splitlines():
        key, _, value = line.partition(" ")
        if key in EXTRAS:
            extras[key] = float(value)
    return int(fields[3]), extras


def workloads_of(binary):
    """The workloads a weft-bench binary knows, from its usage text."""
    proc = subprocess.run([binary, "--help"], capture_output=True, text=True)
    for line in proc.stderr.splitlines():
        if line.startswith("workloads:"):
            return line.split()[1:]
    sys.exit(f"report: cannot list workloads of {binary}")


def runtimes_for(a, workload):
    """The runtimes that have a program for workload."""
    if workload in HTTP_SIZES:
        return [r for r in ("weft", "nginx") if getattr(a, f"{r}_http")]
    if workload in WAKE:
        suffix = "_wake"
    elif workload in RPC_RATES or workload in CPU_RATES:
        if not a.rpc_client:
            return []
        suffix = "_rpc"
    else:
        suffix = "_echo" if workload in ECHO_SIZES else ""
    return [r for r in RUNTIMES if getattr(a, r + suffix)]


def ratio_stats(ours, theirs):
    ratios = [x / y for x, y in zip(ours, theirs) if y > 0]
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)


def fmt_ratio(r):
    return "-" if r is None else f"{r[0]:.2f} ({r[1]:.2f}-{r[2]:.2f})"


def median_extra(runs, key):
    values = [e[key] for _, e in runs if key in e]
    return statistics.median(values) if values else None


def lower_is_better_key(workload):
    """The figure a latency row's ratio compares (weft / peer, lower is better)."""
    return "cpu_us_per_req" if workload in CPU_RATES else "p99_us"


def summarize(a, workloads, runs):
    rows = []
    for w in workloads:
        rs = runtimes_for(a, w)
        row = {"workload": w, "runtimes": rs}
        for r in rs:
            row[f"{r}_ops"] = int(statistics.median(v for v, _ in runs[(w, r)]))
            row[f"{r}_rss_mib"] = round(max(e.get("peak_rss_kib", 0)
                                            for _, e in runs[(w, r)]) / 1024, 1)
            for key in EXTRAS[1:]:
                row[f"{r}_{key}"] = median_extra(runs[(w, r)], key)
        for peer in ("tokio", "go", "nginx"):
            if peer in rs and "weft" in rs:
                if w in LATENCY:
                    # weft's figure over the peer's, round by round: lower is better.
                    key = lower_is_better_key(w)
                    row[f"vs_{peer}"] = ratio_stats([e.get(key, 0) for _, e in runs[(w, "weft")]],
                                                    [e.get(key, 0) for _, e in runs[(w, peer)]])
                else:
                    row[f"vs_{peer}"] = ratio_stats([v for v, _ in runs[(w, "weft")]],
                                                    [v for v, _ in runs[(w, peer)]])
        rows.append(row)
    return rows


def cell(row, key, fmt="{:.0f}"):
    v = row.get(key)
    return "-" if v is None else fmt.format(v)


def main_table(rows):
    """The comparison: one row per workload."""
    rows = [row for row in rows if row["workload"] not in LATENCY
            and row["workload"] not in HTTP_SIZES]
    bytes_cols = any(row.get(f"{r}_bytes_per_task") is not None
                     for row in rows for r in RUNTIMES)
    header = ["workload"] + [f"{r} ops/s" for r in RUNTIMES] + \
             [f"weft/{p}" for p in ("tokio", "go")] + [f"{r} RSS MiB" for r in RUNTIMES]
    if bytes_cols:
        header += [f"{r} B/task" for r in RUNTIMES]
    table = []
    for row in rows:
        t = [row["workload"]] + [cell(row, f"{r}_ops", "{}") for r in RUNTIMES] + \
            [fmt_ratio(row.get(f"vs_{p}")) for p in ("tokio", "go")] + \
            [cell(row, f"{r}_rss_mib", "{}") for r in RUNTIMES]
        if bytes_cols:
            t += [cell(row, f"{r}_bytes_per_task") for r in RUNTIMES]
        table.append(t)
    return header, table


def echo_table(rows):
    """What the echo rows' CPU figure leaves out: wall-clock rate and load."""
    header = ["workload"] + [f"{r} msgs/s" for r in RUNTIMES] + \
             [f"{r} busy % srv/cli" for r in RUNTIMES]
    table = []
    for row in rows:
        if row["workload"] not in ECHO_SIZES:
            continue
        busy = ["-" if row.get(f"{r}_server_busy") is None else
                f"{100 * row[f'{r}_server_busy']:.0f}/{100 * row[f'{r}_client_busy']:.0f}"
                for r in RUNTIMES]
        table.append([row["workload"]] + [cell(row, f"{r}_wall_ops_per_s") for r in RUNTIMES]
                     + busy)
    return header, table


def http_table(rows):
    """weft-http against nginx: one worker each, same file, same wrk."""
    peers = ("weft", "nginx")
    header = ["workload"] + [f"{r} req/s" for r in peers] + \
             [f"{r} CPU us/req" for r in peers] + \
             ["weft/nginx req per CPU-s", "weft/nginx req/s (wall)"] + \
             [f"{r} busy % srv/cli" for r in peers]
    table = []
    for row in rows:
        if row["workload"] not in HTTP_SIZES:
            continue
        wall = None
        if row.get("weft_wall_ops_per_s") and row.get("nginx_wall_ops_per_s"):
            wall = row["weft_wall_ops_per_s"] / row["nginx_wall_ops_per_s"]
        table.append([row["workload"]] +
                     [cell(row, f"{r}_wall_ops_per_s") for r in peers] +
                     [cell(row, f"{r}_cpu_us_per_req", "{:.2f}") for r in peers] +
                     [fmt_ratio(row.get("vs_nginx")),
                      "-" if wall is None else f"{wall:.2f}"] +
                     ["-" if row.get(f"{r}_server_busy") is None else
                      f"{100 * row[f'{r}_server_busy']:.0f}/{100 * row[f'{r}_client_busy']:.0f}"
                      for r in peers])
    return header, table


def fmt_us(v):
    """Microseconds, with fewer digits as they grow."""
    if v is None:
        return "-"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def percentiles(row, r, keys):
    if row.get(f"{r}_p99_us") is None:
        return "-"
    return " / ".join(fmt_us(row.get(f"{r}_{k}")) for k in keys)


def wake_table(rows):
    """Wake latency: percentiles per runtime, weft/peer of p99."""
    header = ["workload"] + [f"{r} p50 / p99 / p99.9 / max us" for r in RUNTIMES] + \
             [f"weft/{p} p99 (lower is better)" for p in ("tokio", "go")] + \
             ["load alone, busy % weft/tokio/go"]
    table = []
    for row in rows:
        if row["workload"] not in WAKE:
            continue
        busy = "/".join("-" if row.get(f"{r}_load_busy") is None else
                        f"{100 * row[f'{r}_load_busy']:.0f}" for r in RUNTIMES)
        table.append([row["workload"]] +
                     [percentiles(row, r, ("p50_us", "p99_us", "p999_us", "max_us"))
                      for r in RUNTIMES] +
                     [fmt_ratio(row.get(f"vs_{p}")) for p in ("tokio", "go")] + [busy])
    return header, table


def stall_table(rows):
    """Sleep lateness with one worker stuck in a 50 ms poll."""
    header = ["workload"] + [f"{r} lateness p50 / p99 / max us" for r in RUNTIMES] + \
             [f"weft/{p} p99 (lower is better)" for p in ("tokio", "go")]
    table = []
    for row in rows:
        if row["workload"] not in STALL:
            continue
        table.append([row["workload"]] +
                     [percentiles(row, r, ("p50_us", "p99_us", "max_us")) for r in RUNTIMES] +
                     [fmt_ratio(row.get(f"vs_{p}")) for p in ("tokio", "go")])
    return header, table


def rpc_table(rows):
    """RPC latency: percentiles per runtime at each offered rate."""
    header = ["workload", "offered req/s"] + \
             [f"{r} p50 / p99 / p99.9 us" for r in RUNTIMES] + \
             [f"weft/{p} p99 (lower is better)" for p in ("tokio", "go")]
    table = []
    for row in rows:
        if row["workload"] not in RPC_RATES:
            continue
        table.append([row["workload"], str(RPC_RATES[row["workload"]])] +
                     [percentiles(row, r, ("p50_us", "p99_us", "p999_us")) for r in RUNTIMES] +
                     [fmt_ratio(row.get(f"vs_{p}")) for p in ("tokio", "go")])
    return header, table


def cpu_table(rows):
    """Server CPU at a fixed offered rate: per request and per second."""
    header = ["workload", "offered req/s"] + [f"{r} CPU us/req" for r in RUNTIMES] + \
             [f"weft/{p} CPU/req (lower is better)" for p in ("tokio", "go")] + \
             [f"{r} CPU % of a core" for r in RUNTIMES]
    table = []
    for row in rows:
        if row["workload"] not in CPU_RATES:
            continue
        table.append([row["workload"], str(CPU_RATES[row["workload"]])] +
                     [cell(row, f"{r}_cpu_us_per_req", "{:.1f}") for r in RUNTIMES] +
                     [fmt_ratio(row.get(f"vs_{p}")) for p in ("tokio", "go")] +
                     ["-" if row.get(f"{r}_server_cpu_per_s") is None else
                      f"{100 * row[f'{r}_server_cpu_per_s']:.1f}" for r in RUNTIMES])
    return header, table


def client_table(rows):
    """What says the RPC client kept its schedule (and was not the bottleneck)."""
    header = ["workload"] + [f"{r} achieved req/s, client busy %, send lag p99 / max us"
                             for r in RUNTIMES]
    table = []
    for row in rows:
        w = row["workload"]
        if w not in RPC_RATES and w not in CPU_RATES:
            continue
        cells = []
        for r in RUNTIMES:
            if row.get(f"{r}_achieved") is None:
                cells.append("-")
                continue
            lost = row.get(f"{r}_unanswered") or 0
            cells.append(f"{row[f'{r}_achieved']:.0f}, {100 * row[f'{r}_client_busy']:.0f}%, "
                         f"{fmt_us(row.get(f'{r}_lag_p99_us'))} / {fmt_us(row.get(f'{r}_lag_max_us'))}"
                         + (f", {lost:.0f} unanswered" if lost else "")
                         + (", not SCHED_FIFO" if row.get(f"{r}_client_fifo") == 0 else ""))
        table.append([w] + cells)
    return header, table


def warn_client_bound(rows):
    for row in rows:
        for r in row["runtimes"]:
            srv, cli = row.get(f"{r}_server_busy"), row.get(f"{r}_client_busy")
            if srv is not None and cli > 0.9 and srv < 0.9:
                print(f"report: warning: {row['workload']} {r}: client {100 * cli:.0f}% busy, "
                      f"server {100 * srv:.0f}%: the client may have been the bottleneck",
                      file=sys.stderr)
            w = row["workload"]
            if w not in RPC_RATES and w not in CPU_RATES:
                continue
            lag, p99 = row.get(f"{r}_lag_p99_us"), row.get(f"{r}_p99_us")
            offered, achieved = row.get(f"{r}_offered"), row.get(f"{r}_achieved")
            if cli is not None and cli > 0.9:
                print(f"report: warning: {w} {r}: the RPC client was {100 * cli:.0f}% busy: "
                      "it may have been the bottleneck", file=sys.stderr)
            if lag is not None and p99 and lag > 0.25 * p99:
                print(f"report: warning: {w} {r}: the client's send lag p99 ({lag:.0f} us) is "
                      f"{100 * lag / p99:.0f}% of the latency p99 ({p99:.0f} us): it did not keep "
                      "its schedule, so part of that latency is the client's (or the machine's)",
                      file=sys.stderr)
            if row.get(f"{r}_unanswered"):
                print(f"report: warning: {w} {r}: {row[f'{r}_unanswered']:.0f} requests "
                      "unanswered at the end: the server fell behind the offered rate",
                      file=sys.stderr)
            elif offered and achieved and achieved < 0.97 * offered:
                print(f"report: warning: {w} {r}: {achieved:.0f} replies/s for {offered:.0f} "
                      "offered", file=sys.stderr)


def print_table(header, table):
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(wd) for h, wd in zip(header, widths)))
    for t in table:
        print("  ".join(c.ljust(wd) for c, wd in zip(t, widths)))


def markdown(header, table):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(t) + " |" for t in table]) + "\n"


NOTES = ("echo_* rows: ops/s = messages per server CPU-second (user+sys), one server "
         "thread each, 64 connections, same client; the ratio is peer CPU per message / "
         "weft CPU per message. idle_tasks: ops/s = tasks spawned, parked and released "
         "per second; B/task = RSS growth per parked task. http_1KiB: examples/http's "
         "weft-http (WEFT_WORKERS=1) against Debian's nginx (worker_processes 1, "
         "master_process off, access_log off, unlimited keepalive_requests), the same 1 KiB "
         "file, wrk -t1 -c64 over keep-alive, server and wrk pinned to different CPUs; "
         "req/s = wrk's requests per wall second (one worker each); CPU us/req = server "
         "user+sys over wrk's window / requests; weft/nginx req per CPU-s = nginx CPU per "
         "request / weft's (median of per-round ratios, min-max).")

LATENCY_NOTES = (
    "Latency tables: ratios are weft / peer (median of per-round ratios, min-max): "
    "LOWER is better. wake_*: {threads} worker threads kept ~60% busy by 4 tasks per "
    "thread (50 us spins between yields, in 10 ms periods; 'load alone' is the measured "
    "CPU busy fraction without the probe, below 60% when other processes share the CPUs); "
    "a plain thread (Go: a goroutine locked to its own thread) sends its clock reading on "
    "an open-loop schedule (2,000/s on average) to 1 consumer task (mpsc) or 8 (one "
    "broadcast send); latency = consumer's clock - sent reading. rpc_*, cpu_*: 64-byte "
    "request/response over loopback TCP, 2 us of busy-wait per request on the server, "
    "{threads} server worker threads, 32 connections from the open-loop C client "
    "bench/peers/rpc-client; latency counted from each request's due time "
    "(coordinated-omission corrected, as wrk2); server CPU is user+sys of the whole "
    "server process over the measured window. The client runs SCHED_FIFO when allowed "
    "(bench/rpc.py), so that other load on the machine delays it less; the client table "
    "says whether it kept its schedule (send lag) and how busy it was. timer_stall: "
    "{threads} worker threads; 64 tasks sleep 1-4 ms over and over while one task sleeps "
    "20 ms and then spins 50 ms in one poll, 20 times; lateness = wake time - deadline.")


def load_average():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine():
    """The CPU model, CPU count, kernel and load: printed next to every figure."""
    model = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    if not model:
        try:
            with open("/proc/cpuinfo") as f:
                model = next((l.split(":", 1)[1].strip() for l in f
                              if l.startswith("model name")), None)
        except OSError:
            pass
    return (f"machine: {model or 'unknown CPU'} (lscpu), {os.cpu_count()} CPUs, "
            f"Linux {platform.release()}; load average {load_average():.1f} at the start")


def write_csv(path, header, table):
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(header)
        wr.writerows(table)


LATENCY_CSV_KEYS = ("p50_us", "p99_us", "p999_us", "max_us", "cpu_us_per_req",
                    "server_cpu_per_s", "load_busy", "late_p99_us", "offered", "achieved",
                    "client_busy", "client_fifo", "lag_p99_us", "lag_max_us", "unanswered")


def latency_csv(rows):
    """The latency rows in long form: one line per workload and runtime."""
    header = ["workload", "runtime"] + list(LATENCY_CSV_KEYS) + \
             ["weft_over_runtime", "ratio_of", "rss_mib"]
    table = []
    for row in rows:
        w = row["workload"]
        if w not in LATENCY:
            continue
        for r in row["runtimes"]:
            ratio = row.get(f"vs_{r}")
            table.append([w, r] + ["" if row.get(f"{r}_{k}") is None else f"{row[f'{r}_{k}']:g}"
                                   for k in LATENCY_CSV_KEYS] +
                         ["" if not ratio else f"{ratio[0]:.3f}", lower_is_better_key(w),
                          str(row.get(f"{r}_rss_mib", ""))])
    return header, table


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weft", required=True)
    ap.add_argument("--peak-rss", required=True, help="the weft-peak-rss launcher")
    ap.add_argument("--tokio")
    ap.add_argument("--go")
    ap.add_argument("--echo-client", help="bench/peers/echo-client: enables the echo rows")
    ap.add_argument("--weft-echo")
    ap.add_argument("--tokio-echo")
    ap.add_argument("--go-echo")
    ap.add_argument("--weft-http", help="examples/http's weft-http: enables http_1KiB")
    ap.add_argument("--nginx-http", help="nginx: the http_1KiB row's peer")
    ap.add_argument("--weft-wake", help="weft-wake: enables the wake_* rows")
    ap.add_argument("--tokio-wake")
    ap.add_argument("--go-wake")
    ap.add_argument("--rpc-client", help="bench/peers/rpc-client: enables the rpc_* and cpu_* rows")
    ap.add_argument("--weft-rpc")
    ap.add_argument("--tokio-rpc")
    ap.add_argument("--go-rpc")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--sections", default="throughput,latency",
                    help="what runs when no workload is named: throughput (weft-bench's "
                         "workloads and echo), latency (wake_*, rpc_*, cpu_*), or both")
    ap.add_argument("--scaling", help="comma-separated thread counts: run the throughput "
                                      "workloads at each (e.g. 1,2,4)")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--name", default=None,
                    help="base name of the .md and .csv written (default results, or "
                         "results-scaling with --scaling)")
    ap.add_argument("--verbose", action="store_true", help="print every command run")
    ap.add_argument("workloads", nargs="*")
    return ap.parse_args()


def known_workloads(a, sections):
    known, default = workloads_of(a.weft), []
    if "throughput" in sections:
        default += [w for w in known if w not in LATENCY]
    if a.echo_client and a.weft_echo:
        known += list(ECHO_SIZES)
        if "throughput" in sections:
            default += list(ECHO_SIZES)
    if a.weft_http:
        known += list(HTTP_SIZES)
        if "throughput" in sections:
            default += list(HTTP_SIZES)
    lat = ([w for w in WAKE if a.weft_wake] +
           [w for w in (*RPC_RATES, *CPU_RATES) if a.rpc_client and a.weft_rpc])
    known += lat
    lat += [w for w in STALL if w in known]
    if "latency" in sections:
        default += lat
    return known, default


def run_all(a, workloads, threads):
    """Every workload, --reps alternating rounds; {(workload, runtime): [(ops, extras)]}."""
    saved, a.threads = a.threads, threads
    runs = {(w, r): [] for w in workloads for r in runtimes_for(a, w)}
    total, done = len(workloads) * a.reps, 0
    for w in workloads:
        for _ in range(a.reps):
            for r in runtimes_for(a, w):
                runs[(w, r)].append(run(a, r, w))
            done += 1
            print(f"\r  running ({threads} threads): {done}/{total} rounds", end="",
                  file=sys.stderr, flush=True)
    print(file=sys.stderr)
    a.threads = saved
    return runs


def main():
    a = parse_args()
    sections = set(a.sections.split(","))
    if a.scaling:
        return scaling(a)
    known, default = known_workloads(a, sections)
    workloads = a.workloads or default
    for w in workloads:
        if w not in known:
            sys.exit(f"report: unknown workload '{w}' (known: {' '.join(known)})")
    host = machine()
    runs = run_all(a, workloads, a.threads)
    host += f", {load_average():.1f} at the end"

    rows = summarize(a, workloads, runs)
    title = (f"weft vs peers: {a.threads} threads, median of {a.reps} alternating rounds"
             f"{'' if a.scale == 1.0 else f', scale {a.scale}'}; ratio = median (min-max), "
             "higher is better")
    lat_title = (f"Latency and CPU: {a.threads} threads, median of {a.reps} alternating rounds"
                 f"{'' if a.scale >= 1.0 else ' (quick: 1 s windows)'}; ratio = weft/peer, "
                 "median (min-max), LOWER is better")
    throughput = [w for w in workloads if w not in LATENCY and w not in HTTP_SIZES]
    tables = []
    if throughput:
        tables.append(main_table(rows))
    if any(w in ECHO_SIZES for w in workloads):
        tables.append(echo_table(rows))
    if any(w in HTTP_SIZES for w in workloads):
        tables.append(http_table(rows))
    lat_tables = [t for t, names in ((wake_table(rows), WAKE), (rpc_table(rows), RPC_RATES),
                                     (cpu_table(rows), CPU_RATES), (stall_table(rows), STALL),
                                     (client_table(rows), (*RPC_RATES, *CPU_RATES)))
                  if any(w in names for w in workloads)]
    print(host)
    if tables:
        print(title)
        for header, table in tables:
            print_table(header, table)
        print(NOTES)
    if lat_tables:
        print(lat_title)
        for header, table in lat_tables:
            print_table(header, table)
        print(LATENCY_NOTES.format(threads=a.threads))
    warn_client_bound(rows)

    name = a.name or "results"
    os.makedirs(a.out, exist_ok=True)
    written = []
    md = [host + "\n"]
    if tables:
        write_csv(os.path.join(a.out, f"{name}.csv"), *tables[0])
        written.append(f"{name}.csv")
        md += [title + "\n", "\n".join(markdown(h, t) for h, t in tables), NOTES + "\n"]
    if lat_tables:
        # results.csv stays the throughput table; alone, the latency rows take it.
        lat_csv = f"{name}-latency.csv" if tables else f"{name}.csv"
        write_csv(os.path.join(a.out, lat_csv), *latency_csv(rows))
        written.append(lat_csv)
        md += [lat_title + "\n", "\n".join(markdown(h, t) for h, t in lat_tables),
               LATENCY_NOTES.format(threads=a.threads) + "\n"]
    with open(os.path.join(a.out, f"{name}.md"), "w") as f:
        f.write("\n".join(md))
    written.append(f"{name}.md")
    if tables:
        written += plot(rows, a.out)
    if lat_tables:
        written += plot_latency(rows, a.out)
    print(f"written in {a.out}: {', '.join(written)}")


def scaling(a):
    """The throughput workloads at each thread count of --scaling."""
    counts = [int(n) for n in a.scaling.split(",")]
    known = [w for w in workloads_of(a.weft) if w not in LATENCY]
    workloads = a.workloads or known
    for w in workloads:
        if w not in known:
            sys.exit(f"report: --scaling runs weft-bench's workloads only, not '{w}' "
                     f"(known: {' '.join(known)})")
    host = machine()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    over = [n for n in counts if n > cpus]
    by_threads = {}
    for n in counts:
        by_threads[n] = summarize(a, workloads, run_all(a, workloads, n))
    host += f", {load_average():.1f} at the end"
    title = (f"weft vs peers by thread count: ops/s (median of {a.reps} alternating rounds"
             f"{'' if a.scale == 1.0 else f', scale {a.scale}'}) and weft's ratio "
             "(median of per-round ratios), higher is better")
    warning = (f"{', '.join(map(str, over))} threads on {cpus} CPUs is oversubscribed: more "
               "worker threads than cores, so those columns measure how each runtime copes "
               "with workers that the OS preempts, not parallel speed-up."
               if over else f"{cpus} CPUs: no column is oversubscribed.")
    header = ["workload"] + [f"{r} ops/s {n}t" for r in RUNTIMES for n in counts] + \
             [f"weft/{p} {n}t" for p in ("tokio", "go") for n in counts]
    table = []
    for i, w in enumerate(workloads):
        t = [w]
        for r in RUNTIMES:
            t += [cell(by_threads[n][i], f"{r}_ops", "{}") for n in counts]
        for p in ("tokio", "go"):
            t += [fmt_ratio(by_threads[n][i].get(f"vs_{p}")) for n in counts]
        table.append(t)
    print(host)
    print(title)
    print(warning)
    print_table(header, table)
    name = a.name or "results-scaling"
    os.makedirs(a.out, exist_ok=True)
    write_csv(os.path.join(a.out, f"{name}.csv"), header, table)
    with open(os.path.join(a.out, f"{name}.md"), "w") as f:
        f.write(f"{host}\n\n{title}\n\n**{warning}**\n\n{markdown(header, table)}")
    written = [f"{name}.csv", f"{name}.md"] + plot_scaling(workloads, counts, by_threads, a.out,
                                                           cpus)
    print(f"written in {a.out}: {', '.join(written)}")


def gnuplot_bars(out, stem, title, columns, rows_data, ylabel="", extra=""):
    """Clustered bars with gnuplot, PNG and SVG; returns the files written.
    columns: the series titles; rows_data: [(label, [value per series])]."""
    if not rows_data or not shutil.which("gnuplot"):
        print(f"report: no data or no gnuplot; no {stem} plot", file=sys.stderr)
        return []
    data = os.path.join(out, f"{stem}.dat")
    with open(data, "w") as f:
        f.write("# label " + " ".join(c.replace(" ", "_") for c in columns) + "\n")
        for label, values in rows_data:
            f.write(label + " " + " ".join("0" if v is None else f"{v:.3f}"
                                           for v in values) + "\n")
    cols = ", ".join(f"'{data}' using {i + 2}:xtic(1) title '{c}'"
                     for i, c in enumerate(columns))
    written = []
    for term, ext in (("pngcairo size 900,480", "png"), ("svg size 900,480", "svg")):
        script = f"""
set terminal {term} noenhanced
set output '{os.path.join(out, stem + '.' + ext)}'
set title '{title}'
set ylabel '{ylabel}'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set xtics rotate by -30
set key top right
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2
{extra}
plot {cols}
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        written.append(f"{stem}.{ext}")
    return written


def plot(rows, out):
    rows = [row for row in rows if row["workload"] not in LATENCY and
            (row.get("vs_tokio") or row.get("vs_go"))]
    peers = [p for p in ("tokio", "go") if any(row.get(f"vs_{p}") for row in rows)]
    return gnuplot_bars(
        out, "ratios",
        "weft relative to peers (higher is better; 1.0 = parity; echo: per server CPU-second)",
        [f"weft / {p}" for p in peers],
        [(row["workload"], [row[f"vs_{p}"][0] if row.get(f"vs_{p}") else None for p in peers])
         for row in rows] if peers else [])


def plot_latency(rows, out):
    rows = [row for row in rows if row["workload"] in LATENCY and
            (row.get("vs_tokio") or row.get("vs_go"))]
    peers = [p for p in ("tokio", "go") if any(row.get(f"vs_{p}") for row in rows)]
    return gnuplot_bars(
        out, "latency",
        "weft / peer: p99 latency (wake_*, rpc_*), server CPU per request (cpu_*); "
        "LOWER is better, 1.0 = parity",
        [f"weft / {p}" for p in peers],
        [(row["workload"], [row[f"vs_{p}"][0] if row.get(f"vs_{p}") else None for p in peers])
         for row in rows] if peers else [], extra="set key below")


def plot_scaling(workloads, counts, by_threads, out, cpus):
    over = " (oversubscribed: > %d CPUs)" % cpus
    columns = [f"weft / tokio, {n} thread{'s' if n > 1 else ''}{over if n > cpus else ''}"
               for n in counts]
    data = []
    for i, w in enumerate(workloads):
        values = [by_threads[n][i].get("vs_tokio") for n in counts]
        if any(values):
            data.append((w, [v[0] if v else None for v in values]))
    return gnuplot_bars(out, "scaling",
                        "weft / tokio throughput by worker threads (higher is better)",
                        columns, data, extra="set key below")


if __name__ == "__main__":
    main()
