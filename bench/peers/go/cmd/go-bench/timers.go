// Timer workload: many short sleeps of staggered lengths.

package main

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// timers starts n goroutines; goroutine i sleeps 1 + (i*7919 mod 10) ms. It
// waits for all of them and checks that none woke early.
func timers(n uint64) (uint64, error) {
	var early atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(int(n))
	for i := uint64(0); i < n; i++ {
		nap := time.Duration(1+i*7919%10) * time.Millisecond
		go func() {
			defer wg.Done()
			start := time.Now()
			time.Sleep(nap)
			if time.Since(start) < nap {
				early.Add(1)
			}
		}()
	}
	wg.Wait()
	if e := early.Load(); e != 0 {
		return 0, fmt.Errorf("%d of %d sleepers woke early", e, n)
	}
	return n, nil
}

// timerStall measures how late sleeps end while one thread at a time is
// stuck in a 50 ms loop: 64 goroutines sleep 1 + (id+k) mod 4 ms over and
// over, noting each sleep's lateness against its deadline, while a staller
// sleeps 20 ms and then spins 50 ms, rounds times. It prints the lateness
// percentiles (p50_us, p99_us, max_us) on stderr and returns the number of
// sleeps.
func timerStall(rounds uint64) (uint64, error) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	lates := make([][]uint64, 64)
	errs := make([]error, 64)
	for id := range lates {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			for k := 0; !stop.Load(); k++ {
				deadline := time.Now().Add(time.Duration(1+(id+k)%4) * time.Millisecond)
				time.Sleep(time.Until(deadline))
				now := time.Now()
				if now.Before(deadline) {
					errs[id] = fmt.Errorf("a sleep ended %v early", deadline.Sub(now))
					return
				}
				lates[id] = append(lates[id], uint64(now.Sub(deadline).Microseconds()))
			}
		}(id)
	}
	for r := uint64(0); r < rounds; r++ {
		time.Sleep(20 * time.Millisecond)
		until := time.Now().Add(50 * time.Millisecond)
		for time.Now().Before(until) {
		}
	}
	stop.Store(true)
	wg.Wait()
	var late []uint64
	for id := range lates {
		if errs[id] != nil {
			return 0, errs[id]
		}
		late = append(late, lates[id]...)
	}
	if len(late) == 0 {
		return 0, fmt.Errorf("no sleep was measured")
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	rank := func(q uint64) uint64 {
		r := (q*uint64(len(late)) + 999) / 1000
		if r < 1 {
			r = 1
		}
		return late[r-1]
	}
	fmt.Fprintf(os.Stderr, "p50_us %d\np99_us %d\nmax_us %d\n", rank(500), rank(990), late[len(late)-1])
	return uint64(len(late)), nil
}
