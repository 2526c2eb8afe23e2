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
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys

RUNTIMES = ("weft", "tokio", "go")
ECHO_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo.py")
ECHO_SIZES = {"echo_64B": 64, "echo_1KiB": 1024}
# "key value" lines a run may print on stderr besides its result line.
EXTRAS = ("peak_rss_kib", "bytes_per_task", "wall_ops_per_s", "server_busy", "client_busy")


def command(a, runtime, workload):
    """The command line of one run of workload on runtime."""
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
        for peer in ("tokio", "go"):
            if peer in rs and "weft" in rs:
                row[f"vs_{peer}"] = ratio_stats([v for v, _ in runs[(w, "weft")]],
                                                [v for v, _ in runs[(w, peer)]])
        rows.append(row)
    return rows


def cell(row, key, fmt="{:.0f}"):
    v = row.get(key)
    return "-" if v is None else fmt.format(v)


def main_table(rows):
    """The comparison: one row per workload."""
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


def warn_client_bound(rows):
    for row in rows:
        for r in row["runtimes"]:
            srv, cli = row.get(f"{r}_server_busy"), row.get(f"{r}_client_busy")
            if srv is not None and cli > 0.9 and srv < 0.9:
                print(f"report: warning: {row['workload']} {r}: client {100 * cli:.0f}% busy, "
                      f"server {100 * srv:.0f}%: the client may have been the bottleneck",
                      file=sys.stderr)


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
         "per second; B/task = RSS growth per parked task.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weft", required=True)
    ap.add_argument("--peak-rss", required=True, help="the weft-peak-rss launcher")
    ap.add_argument("--tokio")
    ap.add_argument("--go")
    ap.add_argument("--echo-client", help="bench/peers/echo-client: enables the echo rows")
    ap.add_argument("--weft-echo")
    ap.add_argument("--tokio-echo")
    ap.add_argument("--go-echo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("workloads", nargs="*")
    a = ap.parse_args()

    known = workloads_of(a.weft)
    if a.echo_client and a.weft_echo:
        known += list(ECHO_SIZES)
    workloads = a.workloads or known
    for w in workloads:
        if w not in known:
            sys.exit(f"report: unknown workload '{w}' (known: {' '.join(known)})")
    runs = {(w, r): [] for w in workloads for r in runtimes_for(a, w)}
    total, done = len(workloads) * a.reps, 0
    for w in workloads:
        for _ in range(a.reps):
            for r in runtimes_for(a, w):
                runs[(w, r)].append(run(a, r, w))
            done += 1
            print(f"\r  running: {done}/{total} rounds", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    rows = summarize(a, workloads, runs)
    title = (f"weft vs peers: {a.threads} threads, median of {a.reps} alternating rounds"
             f"{'' if a.scale == 1.0 else f', scale {a.scale}'}; ratio = median (min-max), "
             "higher is better")
    tables = [main_table(rows)]
    if any(w in ECHO_SIZES for w in workloads):
        tables.append(echo_table(rows))
    print(title)
    for header, table in tables:
        print_table(header, table)
    print(NOTES)
    warn_client_bound(rows)

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(tables[0][0])
        wr.writerows(tables[0][1])
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(title + "\n\n" + "\n".join(markdown(h, t) for h, t in tables) +
                "\n" + NOTES + "\n")
    plot(rows, a.out)
    print(f"written: {a.out}/results.csv, results.md, ratios.png, ratios.svg")


def plot(rows, out):
    rows = [row for row in rows if row.get("vs_tokio") or row.get("vs_go")]
    peers = [p for p in ("tokio", "go") if any(row.get(f"vs_{p}") for row in rows)]
    if not peers or not shutil.which("gnuplot"):
        print("report: no peer or no gnuplot; no plot", file=sys.stderr)
        return
    data = os.path.join(out, "ratios.dat")
    with open(data, "w") as f:
        f.write("# workload " + " ".join(peers) + "\n")
        for row in rows:
            f.write(row["workload"] + " " + " ".join(
                f"{row[f'vs_{p}'][0]:.3f}" if row.get(f"vs_{p}") else "0"
                for p in peers) + "\n")
    cols = ", ".join(f"'{data}' using {i + 2}:xtic(1) title 'weft / {p}'"
                     for i, p in enumerate(peers))
    for term, ext in (("pngcairo size 900,480", "png"), ("svg size 900,480", "svg")):
        script = f"""
set terminal {term} noenhanced
set output '{os.path.join(out, 'ratios.' + ext)}'
set title 'weft relative to peers (higher is better; 1.0 = parity; echo: per server CPU-second)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set xtics rotate by -30
set key top right
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2
plot {cols}
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    main()
