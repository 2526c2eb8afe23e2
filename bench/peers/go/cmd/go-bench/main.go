// Command go-bench runs the weft benchmark workloads (docs/benchmarks.md)
// on goroutines, with GOMAXPROCS set to the thread count.
//
// Usage:
//
//	go-bench [--threads N] [--scale F] [WORKLOAD ...]
//
// It prints one line per workload on stdout,
// "<workload> <seconds> <operations> <ops_per_second>"; failed checks go to
// stderr and make the exit status non-zero. idle_tasks also prints
// "bytes_per_task N" on stderr.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"time"
)

// A workload runs once at the sizes of docs/benchmarks.md, shrunk by scale, checks
// its own result and returns its operation count. Scale shrinks per-task
// iteration counts, never the number of concurrent tasks of a fixed-width
// workload.
type workload struct {
	name string
	run  func(scale float64) (uint64, error)
}

// workloads lists every workload in the order of docs/benchmarks.md, then
// idle_tasks.
var workloads = []workload{
	{"spawn_many", func(s float64) (uint64, error) { return spawnMany(scaled(1_000_000, s)) }},
	{"spawn_join", func(s float64) (uint64, error) { return spawnJoin(scaled(200_000, s)) }},
	{"yield_many", func(s float64) (uint64, error) { return yieldMany(1_000, scaled(1_000, s)) }},
	{"ping_pong", func(s float64) (uint64, error) { return pingPong(1_000, scaled(1_000, s)) }},
	{"chained_spawn", func(s float64) (uint64, error) { return chainedSpawn(scaled(1_000_000, s)) }},
	{"abort_churn", func(s float64) (uint64, error) { return abortChurn(scaled(500_000, s)) }},
	{"token_cancel", func(s float64) (uint64, error) { return tokenCancel(scaled(500_000, s)) }},
	{"mpsc", func(s float64) (uint64, error) { return mpsc(4, scaled(250_000, s), 1_024) }},
	{"mutex", func(s float64) (uint64, error) { return mutex(100, scaled(10_000, s)) }},
	{"timers", func(s float64) (uint64, error) { return timers(scaled(100_000, s)) }},
	{"timer_stall", func(s float64) (uint64, error) { return timerStall(scaled(20, s)) }},
	{"idle_tasks", func(s float64) (uint64, error) { return idleTasks(scaled(1_000_000, s)) }},
}

// scaled scales a nominal count by --scale, keeping at least one.
func scaled(n uint64, scale float64) uint64 {
	v := uint64(math.Round(float64(n) * scale))
	if v < 1 {
		return 1
	}
	return v
}

func lookup(name string) (workload, bool) {
	for _, w := range workloads {
		if w.name == name {
			return w, true
		}
	}
	return workload{}, false
}

func main() {
	threads := flag.Int("threads", 2, "number of threads (GOMAXPROCS)")
	scale := flag.Float64("scale", 1.0, "multiplier for the iteration counts")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go-bench [--threads N] [--scale F] [WORKLOAD ...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *threads < 1 || !(*scale > 0) || math.IsInf(*scale, 0) {
		flag.Usage()
		os.Exit(2)
	}

	selected := workloads
	if flag.NArg() > 0 {
		selected = nil
		for _, name := range flag.Args() {
			w, ok := lookup(name)
			if !ok {
				fmt.Fprintf(os.Stderr, "go-bench: unknown workload '%s'\n", name)
				os.Exit(2)
			}
			selected = append(selected, w)
		}
	}

	runtime.GOMAXPROCS(*threads)
	for _, w := range selected {
		// Start every workload from a clean heap; this is not timed.
		runtime.GC()
		start := time.Now()
		ops, err := w.run(*scale)
		secs := time.Since(start).Seconds()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-bench: %s: %v\n", w.name, err)
			os.Exit(1)
		}
		fmt.Printf("%s %.6f %d %d\n", w.name, secs, ops, uint64(math.Round(float64(ops)/secs)))
	}
}
