// Command go-wake runs the wake-latency workloads (wake_1, wake_8) of the weft
// benchmarks on goroutines, with GOMAXPROCS set to the thread count; the same
// workload as weft-wake (bench/wake.c has the full definition).
//
// Usage:
//
//	go-wake [--threads N] [--seconds D] [--warmup W] [--calibrate C]
//	        [--rate R] [--load F] [--consumers K] WORKLOAD ...
//
// It prints "<workload> <seconds> <samples> <samples_per_second>" on stdout
// and the figures (p50_us p99_us p999_us max_us load_busy late_p99_us
// late_max_us missed) as "key value" lines on stderr.
//
//   - Background load: 4 goroutines per thread, staggered over P = 10 ms;
//     each period one runs C = round(F * 50) chunks of a 50 us busy-wait then
//     runtime.Gosched, and sleeps (time.Sleep) until its next deadline.
//   - Producer: the main goroutine, locked to its own OS thread
//     (runtime.LockOSThread: Go's nearest thing to a thread outside the
//     runtime), on a schedule fixed in advance (gaps uniform in [M/2, 3M/2),
//     M = 1e9 / R ns, from splitmix64). It sleeps until each due time
//     (time.Sleep), reads the monotonic clock and sends the reading: wake_1
//     over a buffered channel (65536, never full) to one consumer goroutine;
//     wake_8 by closing one channel that 8 consumers wait on (a chain of
//     generations: each carries its stamp and the next generation, so no
//     consumer can miss one - Go's broadcast).
//   - A consumer subtracts the stamp from the clock when its receive returns.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	periodNs       = 10_000_000
	chunkNs        = 50_000
	tasksPerThread = 4
	seed           = 0x5745_4654_5741_4b45
	endStamp       = math.MaxUint64
)

// base is the origin of every stamp: time.Since reads the monotonic clock.
var base = time.Now()

func nowNs() uint64 { return uint64(time.Since(base)) }

func sleepUntilNs(t uint64) {
	if d := time.Duration(t) - time.Since(base); d > 0 {
		time.Sleep(d)
	}
}

func spinNs(ns uint64) {
	start := nowNs()
	for nowNs()-start < ns {
	}
}

func cpuNs() uint64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return uint64(ru.Utime.Nano() + ru.Stime.Nano())
}

func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// rank is the nearest-rank percentile q/1000 of sorted (bench/latency.h).
func rank(sorted []uint64, q int) uint64 {
	if len(sorted) == 0 {
		return 0
	}
	r := (q*len(sorted) + 999) / 1000
	if r < 1 {
		r = 1
	}
	return sorted[r-1]
}

func loadTask(first uint64, chunks int, stop *atomic.Bool, done chan<- struct{}) {
	deadline := first
	for {
		sleepUntilNs(deadline)
		if stop.Load() {
			done <- struct{}{}
			return
		}
		for c := 0; c < chunks; c++ {
			spinNs(chunkNs)
			runtime.Gosched()
		}
		deadline += periodNs
		if now := nowNs(); deadline <= now {
			deadline += ((now-deadline)/periodNs + 1) * periodNs
		}
	}
}

// generation is one broadcast: closing done publishes stamp and next.
type generation struct {
	stamp uint64
	next  *generation
	done  chan struct{}
}

type options struct {
	threads, consumers                      int
	seconds, warmup, calibrate, rate, load float64
}

func run(name string, o options) error {
	broadcast := name != "wake_1"
	nconsumers := 1
	if broadcast {
		nconsumers = o.consumers
	}
	var stop atomic.Bool
	chunks := int(math.Round(o.load * 50))
	nbg := tasksPerThread * o.threads
	bgDone := make(chan struct{}, nbg)
	t0 := nowNs() + 1_000_000
	for i := 0; i < nbg; i++ {
		go loadTask(t0+uint64(i)*periodNs/uint64(nbg), chunks, &stop, bgDone)
	}

	sleepUntilNs(nowNs() + 200_000_000)
	c0, w0 := cpuNs(), nowNs()
	sleepUntilNs(w0 + uint64(o.calibrate*1e9))
	loadBusy := float64(cpuNs()-c0) / (float64(nowNs()-w0) * float64(o.threads))

	// The schedule, fixed in advance: due[k] ns after the start.
	mean := uint64(1e9 / o.rate)
	warmNs, measNs := uint64(o.warmup*1e9), uint64(o.seconds*1e9)
	state := uint64(seed)
	var due []uint64
	for at := uint64(0); at < warmNs+measNs; at += mean/2 + splitmix64(&state)%mean {
		due = append(due, at)
	}
	firstMeasured := 0
	for firstMeasured < len(due) && due[firstMeasured] < warmNs {
		firstMeasured++
	}
	nmeasured := len(due) - firstMeasured

	var measureFrom atomic.Uint64
	measureFrom.Store(math.MaxUint64)
	results := make(chan []uint64, nconsumers)
	record := func(samples []uint64, stamp uint64) []uint64 {
		now := nowNs()
		if stamp >= measureFrom.Load() {
			samples = append(samples, now-stamp)
		}
		return samples
	}
	values := make(chan uint64, 65536)
	gen := &generation{done: make(chan struct{})}
	for i := 0; i < nconsumers; i++ {
		if broadcast {
			go func(g *generation) {
				samples := make([]uint64, 0, nmeasured)
				for {
					<-g.done
					if g.stamp == endStamp {
						results <- samples
						return
					}
					samples = record(samples, g.stamp)
					g = g.next
				}
			}(gen)
		} else {
			go func() {
				samples := make([]uint64, 0, nmeasured)
				for v := range values {
					samples = record(samples, v)
				}
				results <- samples
			}()
		}
	}

	// The producer: this goroutine on its own thread, on the schedule
	// whatever the consumers do.
	runtime.LockOSThread()
	start := nowNs() + 5_000_000
	late := make([]uint64, 0, nmeasured)
	for k, d := range due {
		sleepUntilNs(start + d)
		stamp := nowNs()
		// The first measured send's stamp splits warmup from measured (a
		// late warmup send still has a smaller one); the send orders this
		// store before the consumers' reads.
		if k == firstMeasured {
			measureFrom.Store(stamp)
		}
		if k >= firstMeasured {
			late = append(late, stamp-(start+d))
		}
		if broadcast {
			next := &generation{done: make(chan struct{})}
			gen.stamp, gen.next = stamp, next
			close(gen.done)
			gen = next
		} else {
			values <- stamp
		}
	}
	if broadcast {
		gen.stamp = endStamp
		close(gen.done)
	} else {
		close(values)
	}
	runtime.UnlockOSThread()

	samples := make([]uint64, 0, nmeasured*nconsumers)
	for i := 0; i < nconsumers; i++ {
		samples = append(samples, <-results...)
	}
	stop.Store(true)
	for i := 0; i < nbg; i++ {
		<-bgDone
	}
	if len(samples) != nmeasured*nconsumers {
		return fmt.Errorf("%d samples, expected %d", len(samples), nmeasured*nconsumers)
	}
	fmt.Printf("%s %.6f %d %.0f\n", name, o.seconds, len(samples), float64(len(samples))/o.seconds)
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	for _, p := range []struct {
		key string
		q   int
	}{{"p50_us", 500}, {"p99_us", 990}, {"p999_us", 999}, {"max_us", 1000}} {
		fmt.Fprintf(os.Stderr, "%s %.1f\n", p.key, float64(rank(samples, p.q))/1e3)
	}
	fmt.Fprintf(os.Stderr, "load_busy %.3f\nlate_p99_us %.1f\nlate_max_us %.1f\nmissed 0\n",
		loadBusy, float64(rank(late, 990))/1e3, float64(rank(late, 1000))/1e3)
	return nil
}

func main() {
	var o options
	flag.IntVar(&o.threads, "threads", 2, "number of threads (GOMAXPROCS)")
	flag.IntVar(&o.consumers, "consumers", 8, "consumers of wake_8")
	flag.Float64Var(&o.seconds, "seconds", 5, "measured seconds")
	flag.Float64Var(&o.warmup, "warmup", 1, "warmup seconds")
	flag.Float64Var(&o.calibrate, "calibrate", 1, "seconds of load alone, to measure it")
	flag.Float64Var(&o.rate, "rate", 2000, "mean sends per second")
	flag.Float64Var(&o.load, "load", 0.6, "background load (fraction of the workers)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go-wake [--threads N] [--seconds D] [--warmup W] "+
			"[--calibrate C] [--rate R] [--load F] [--consumers K] WORKLOAD ...\n"+
			"workloads: wake_1 wake_8")
	}
	flag.Parse()
	if o.threads < 1 || o.consumers < 1 || !(o.seconds > 0) || !(o.rate > 0) ||
		!(o.calibrate > 0) || o.warmup < 0 || o.load < 0 || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	for _, name := range flag.Args() {
		if name != "wake_1" && name != "wake_8" {
			fmt.Fprintf(os.Stderr, "go-wake: unknown workload '%s'\n", name)
			os.Exit(2)
		}
	}
	runtime.GOMAXPROCS(o.threads)
	for _, name := range flag.Args() {
		if err := run(name, o); err != nil {
			fmt.Fprintf(os.Stderr, "go-wake: %s: %v\n", name, err)
			os.Exit(1)
		}
	}
}
