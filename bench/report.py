#!/usr/bin/env python3
"""bench/report.py - run weft-bench and its peers side by side and report.

Every workload runs for each runtime in turn (weft, tokio, go, weft, tokio,
go, ...) `--reps` times at the same thread count. The report gives, per
workload: the median ops/s of each runtime, weft's ratio to each peer (the
median of the per-round ratios, with their min-max spread), and each runtime's
peak RSS. It is printed as a table and written as CSV, Markdown, and a plot of
the ratios (PNG and SVG, with gnuplot when it is installed).
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys

RUNTIMES = ("weft", "tokio", "go")


def run_with_rss(launcher, binary, threads, scale, workload):
    """Run one workload under the peak-RSS launcher; return (ops/s, KiB)."""
    args = [launcher, binary, "--threads", str(threads)]
    if scale != 1.0:
        args += ["--scale", str(scale)]
    proc = subprocess.run(args + [workload], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"report: {os.path.basename(binary)} {workload} failed "
                 f"(exit {proc.returncode}):\n{proc.stderr}")
    fields = proc.stdout.split()
    if len(fields) != 4 or fields[0] != workload:
        sys.exit(f"report: unexpected output from {binary}: {proc.stdout!r}")
    kib = [int(l.split()[1]) for l in proc.stderr.splitlines() if l.startswith("peak_rss_kib ")]
    return int(fields[3]), kib[-1] if kib else 0


def workloads_of(binary):
    """The workloads a weft-bench binary knows, from its usage text."""
    proc = subprocess.run([binary, "--help"], capture_output=True, text=True)
    for line in proc.stderr.splitlines():
        if line.startswith("workloads:"):
            return line.split()[1:]
    sys.exit(f"report: cannot list workloads of {binary}")


def ratio_stats(ours, theirs):
    ratios = [a / b for a, b in zip(ours, theirs) if b > 0]
    if not ratios:
        return None
    return statistics.median(ratios), min(ratios), max(ratios)


def fmt_ratio(r):
    return "-" if r is None else f"{r[0]:.2f} ({r[1]:.2f}-{r[2]:.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weft", required=True)
    ap.add_argument("--peak-rss", required=True, help="the weft-peak-rss launcher")
    ap.add_argument("--tokio")
    ap.add_argument("--go")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("workloads", nargs="*")
    a = ap.parse_args()

    bins = {"weft": a.weft, "tokio": a.tokio, "go": a.go}
    bins = {k: v for k, v in bins.items() if v}
    workloads = a.workloads or workloads_of(a.weft)
    ops = {(w, r): [] for w in workloads for r in bins}
    rss = {(w, r): 0 for w in workloads for r in bins}
    total = len(workloads) * a.reps
    done = 0
    for w in workloads:
        for _ in range(a.reps):
            for r in RUNTIMES:
                if r not in bins:
                    continue
                v, kib = run_with_rss(a.peak_rss, bins[r], a.threads, a.scale, w)
                ops[(w, r)].append(v)
                rss[(w, r)] = max(rss[(w, r)], kib)
            done += 1
            print(f"\r  running: {done}/{total} rounds", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    rows = []
    for w in workloads:
        row = {"workload": w}
        for r in bins:
            row[f"{r}_ops"] = int(statistics.median(ops[(w, r)]))
            row[f"{r}_rss_mib"] = round(rss[(w, r)] / 1024, 1)
        for peer in ("tokio", "go"):
            if peer in bins:
                row[f"vs_{peer}"] = ratio_stats(ops[(w, "weft")], ops[(w, peer)])
        rows.append(row)

    os.makedirs(a.out, exist_ok=True)
    header = ["workload"] + [f"{r} ops/s" for r in bins] + \
             [f"weft/{p}" for p in ("tokio", "go") if p in bins] + \
             [f"{r} RSS MiB" for r in bins]
    table = []
    for row in rows:
        table.append([row["workload"]] + [str(row[f"{r}_ops"]) for r in bins] +
                     [fmt_ratio(row[f"vs_{p}"]) for p in ("tokio", "go") if p in bins] +
                     [str(row[f"{r}_rss_mib"]) for r in bins])
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    print(f"weft vs peers: {a.threads} threads, median of {a.reps} alternating rounds"
          f"{'' if a.scale == 1.0 else f', scale {a.scale}'}; ratio = median (min-max)")
    print("  ".join(h.ljust(wd) for h, wd in zip(header, widths)))
    for t in table:
        print("  ".join(c.ljust(wd) for c, wd in zip(t, widths)))

    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(header)
        wr.writerows(table)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("| " + " | ".join(header) + " |\n")
        f.write("|" + "---|" * len(header) + "\n")
        for t in table:
            f.write("| " + " | ".join(t) + " |\n")
    plot(rows, bins, a.out)
    print(f"written: {a.out}/results.csv, results.md, ratios.png, ratios.svg")


def plot(rows, bins, out):
    peers = [p for p in ("tokio", "go") if p in bins]
    if not peers or not shutil.which("gnuplot"):
        print("report: gnuplot not installed; no plot", file=sys.stderr)
        return
    data = os.path.join(out, "ratios.dat")
    with open(data, "w") as f:
        f.write("# workload " + " ".join(peers) + "\n")
        for row in rows:
            f.write(row["workload"] + " " +
                    " ".join(f"{row[f'vs_{p}'][0]:.3f}" for p in peers) + "\n")
    cols = ", ".join(f"'{data}' using {i + 2}:xtic(1) title 'weft / {p}'"
                     for i, p in enumerate(peers))
    for term, ext in (("pngcairo size 900,480", "png"), ("svg size 900,480", "svg")):
        script = f"""
set terminal {term} noenhanced
set output '{os.path.join(out, 'ratios.' + ext)}'
set title 'weft throughput relative to peers (higher is better; 1.0 = parity)'
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
