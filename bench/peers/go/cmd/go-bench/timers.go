// Timer workload: many short sleeps of staggered lengths.

package main

import (
	"fmt"
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
