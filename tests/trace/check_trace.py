#!/usr/bin/env python3
"""tests/trace/check_trace.py - checks a weft trace (weft/trace.h).

    check_trace.py TRACE [--expect-cancel SOURCE:FUNCTION] [--expect-shield]
                         [--expect NAME ...]
    check_trace.py --run PROGRAM [the same options]
    check_trace.py --stress WEFT_STRESS [the same options]
    check_trace.py --stress-threaded WEFT_STRESS [the same options]
    check_trace.py --ring TRACE_RING [the same options]

Checks that the file is valid trace-event JSON and that:
  - every event has the fields its phase needs;
  - every span is closed: complete events ("X") have a duration >= 0,
    "B"/"E" pairs match per track, async "b"/"e" pairs match by id;
  - timestamps never decrease within a track (pid, tid), in file order;
  - flows are joined: every flow start ("s") has exactly one end ("f") with
    the same category and id, no earlier, and every end has its start; both
    ends lie inside a complete event of their own track.
--expect-cancel asks for a cancellation that took effect with that source
at an await of that function (with a file and a line); --expect-shield, that
it was held by a shield for a while. --expect asks for an event of that
name (e.g. steal, park, timer, "cancel request") or a flow category
(wake, spawn, cancel).

--run runs PROGRAM FILE in a temporary directory and checks FILE.
--stress runs weft-stress deterministically with a violation forced in a
known instance, expects it to fail with a replay line and a trace line, and
checks the trace that line names. --stress-threaded runs weft-stress's
threaded scenarios for 3 s with WEFT_TRACE set (tracing on while every
worker, the blocking pool and plain threads record: the TSan build runs
this) and checks the trace written when its runtime is freed. --ring runs
tests/trace/trace_ring.c's program, which writes a flight-recorder trace
(WEFT_TRACE_KEEP_LAST) 20 times while its buffers wrap, and checks every
file, and that each span is a poll of one of that program's tasks, a park,
or a flow's endpoint. (What shows a torn event is the TSan build, which
runs this too: the copy and the overwrites race by design.)
Python 3 standard library only. Exit status 0: all good; 1: a check failed.
"""
import argparse
import bisect
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict


class Bad(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Bad(msg)


def check_fields(ev):
    need(isinstance(ev, dict), "an event is not an object: %r" % (ev,))
    ph = ev.get("ph")
    need(isinstance(ph, str), "event without ph: %r" % (ev,))
    if ph == "M":
        return
    for key in ("name", "pid", "tid", "ts"):
        need(key in ev, "%s event without %s: %r" % (ph, key, ev))
    need(isinstance(ev["ts"], (int, float)) and ev["ts"] >= 0, "bad ts: %r" % (ev,))
    if ph == "X":
        need(isinstance(ev.get("dur"), (int, float)) and ev["dur"] >= 0,
             "complete event without a duration >= 0: %r" % (ev,))
    if ph in "sfbe":
        need("id" in ev and "cat" in ev, "%s event without id or cat: %r" % (ph, ev))


def check_monotonic(events):
    last = {}
    for ev in events:
        if ev["ph"] == "M":
            continue
        track = (ev["pid"], ev["tid"])
        need(ev["ts"] >= last.get(track, 0),
             "timestamps go back on track %r at %r" % (track, ev))
        last[track] = ev["ts"]


def check_spans(events):
    stacks = defaultdict(list)
    open_async = {}
    for ev in events:
        ph, track = ev["ph"], (ev.get("pid"), ev.get("tid"))
        if ph == "B":
            stacks[track].append(ev)
        elif ph == "E":
            need(stacks[track], "E without B on %r: %r" % (track, ev))
            stacks[track].pop()
        elif ph == "b":
            key = (ev["cat"], ev["id"])
            need(key not in open_async, "async span %r opened twice" % (key,))
            open_async[key] = ev
        elif ph == "e":
            key = (ev["cat"], ev["id"])
            need(key in open_async, "async end without begin: %r" % (ev,))
            need(open_async.pop(key)["ts"] <= ev["ts"], "async span ends before it begins")
    for track, stack in stacks.items():
        need(not stack, "unclosed B span on %r" % (track,))
    need(not open_async, "unclosed async span: %r" % (list(open_async.values())[:1],))


def check_nesting(events):
    """Complete events of one track nest or follow each other (in file order,
    which is time order): none ends inside another."""
    open_ends = defaultdict(list)
    for ev in events:
        if ev["ph"] != "X":
            continue
        stack = open_ends[(ev["pid"], ev["tid"])]
        while stack and stack[-1] <= ev["ts"]:
            stack.pop()
        end = ev["ts"] + ev["dur"]
        need(not stack or end <= stack[-1] + 1e-6,
             "slice overlaps the one it starts in: %r" % (ev,))
        stack.append(end)


def enclosed(ev, slices):
    """Is ev inside a slice of its track? slices: per track, (start, end)
    sorted by start; slices nest (check_nesting), so the innermost
    candidates are the last few that start no later than ev."""
    track = slices.get((ev["pid"], ev["tid"]), [])
    i = bisect.bisect_right(track, (ev["ts"], float("inf")))
    return any(start <= ev["ts"] <= end for start, end in track[max(0, i - 8):i])


def check_flows(events):
    slices = defaultdict(list)
    for ev in events:
        if ev["ph"] == "X":
            slices[(ev["pid"], ev["tid"])].append((ev["ts"], ev["ts"] + ev["dur"]))
    for track in slices.values():
        track.sort()
    starts, ends = {}, {}
    for ev in events:
        if ev["ph"] not in ("s", "f"):
            continue
        key = (ev["cat"], ev["id"])
        side = starts if ev["ph"] == "s" else ends
        need(key not in side, "flow %r has two %s events" % (key, ev["ph"]))
        side[key] = ev
        need(enclosed(ev, slices), "flow %s event outside any slice: %r" % (ev["ph"], ev))
    for key, ev in starts.items():
        need(key in ends, "flow start without its end: %r" % (ev,))
        need(ends[key]["ts"] >= ev["ts"], "flow %r ends before it starts" % (key,))
    for key, ev in ends.items():
        need(key in starts, "flow end without its start: %r" % (ev,))
    return len(starts)


def check_cancel(events, expect, shield):
    source, func = expect.split(":", 1)
    found = [ev for ev in events if ev.get("cat") == "cancel" and ev["ph"] == "i"
             and ev["name"] in ("cancel delivered", "torn down")
             and ev.get("args", {}).get("source") == source
             and ev["args"].get("function") == func]
    need(found, "no cancellation with source %s at an await of %s" % (source, func))
    ev = found[0]
    need(ev["args"].get("site") and isinstance(ev["args"].get("line"), int)
         and ev["args"]["line"] > 0, "the cancellation has no await site: %r" % (ev,))
    if shield:
        need(ev["args"].get("shield_held_ns", 0) > 0,
             "the cancellation was not held by a shield: %r" % (ev,))
    flows_in = [f for f in events if f["ph"] == "f" and f.get("cat") == "cancel"]
    need(flows_in, "no flow from a cancellation request to where it took effect")


def check_file(path, args):
    with open(path) as f:
        doc = json.load(f)
    need(isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list),
         "no traceEvents array")
    events = doc["traceEvents"]
    for ev in events:
        check_fields(ev)
    check_monotonic(events)
    check_spans(events)
    check_nesting(events)
    nflows = check_flows(events)
    if args.expect_cancel:
        check_cancel(events, args.expect_cancel, args.expect_shield)
    names = {ev.get("name") for ev in events} | {ev.get("cat") for ev in events}
    for name in args.expect or ():
        need(name in names, "no %r event in the trace" % (name,))
    print("check_trace: %s: %d events, %d flows, all checks pass"
          % (path, len(events), nflows))


def run_program(prog, args):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "trace.json")
        r = subprocess.run([os.path.abspath(prog), path], cwd=d)
        need(r.returncode == 0, "%s exited with %d" % (prog, r.returncode))
        check_file(path, args)


def run_stress(exe, args):
    with tempfile.TemporaryDirectory() as d:
        cmd = [os.path.abspath(exe), "--deterministic", "--runs", "3", "--seed", "0x5eed", "--threads", "2",
               "--scenario", "sim_mix", "--force-violation", "1"]
        r = subprocess.run(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        sys.stderr.write(r.stderr)
        need(r.returncode == 1, "weft-stress with a forced violation exited %d" % r.returncode)
        need("replay: weft-stress --deterministic" in r.stderr, "no replay line")
        m = re.search(r"^  trace: (\S+)$", r.stderr, re.M)
        need(m, "no trace line next to the replay line")
        path = os.path.join(d, m.group(1))
        need(os.path.getsize(path) > 0, "the trace file is empty")
        check_file(path, args)


def run_stress_threaded(exe, args):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "threaded.json")
        env = dict(os.environ, WEFT_TRACE=path, WEFT_TRACE_EVENTS="100000")
        r = subprocess.run([os.path.abspath(exe), "--seconds", "3", "--seed", "0x5eed"],
                           cwd=d, env=env)
        need(r.returncode == 0, "weft-stress with WEFT_TRACE exited %d" % r.returncode)
        check_file(path, args)


RING_SPANS = {"player", "child", "task", "park", "wake", "spawn"}


def run_ring(prog, args):
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([os.path.abspath(prog), d], cwd=d)
        need(r.returncode == 0, "%s exited with %d" % (prog, r.returncode))
        files = sorted((f for f in os.listdir(d) if f.startswith("ring-")),
                       key=lambda f: int(f[5:-5]))
        need(len(files) == 20, "%d ring files, not 20" % len(files))
        for name in files:
            path = os.path.join(d, name)
            check_file(path, args)
            with open(path) as f:
                doc = json.load(f)
            other = doc.get("otherData", {})
            need(other.get("keep") == "last", "%s: keep is %r" % (name, other.get("keep")))
            need(other.get("overwritten", 0) > 0, "%s: nothing was overwritten" % name)
            spans = {ev["name"] for ev in doc["traceEvents"] if ev.get("ph") == "X"}
            need(spans <= RING_SPANS, "%s: spans named %r" % (name, spans - RING_SPANS))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trace", nargs="?")
    ap.add_argument("--run")
    ap.add_argument("--stress")
    ap.add_argument("--stress-threaded")
    ap.add_argument("--ring")
    ap.add_argument("--expect-cancel")
    ap.add_argument("--expect-shield", action="store_true")
    ap.add_argument("--expect", action="append")
    args = ap.parse_args()
    try:
        if args.run:
            run_program(args.run, args)
        elif args.stress:
            run_stress(args.stress, args)
        elif args.stress_threaded:
            run_stress_threaded(args.stress_threaded, args)
        elif args.ring:
            run_ring(args.ring, args)
        elif args.trace:
            check_file(args.trace, args)
        else:
            ap.error("a TRACE, --run or --stress")
    except (Bad, ValueError, OSError) as e:
        print("check_trace: FAILED: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
