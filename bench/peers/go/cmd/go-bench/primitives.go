// Sync workloads: a bounded multi-producer channel and a contended mutex.

package main

import (
	"fmt"
	"runtime"
	"sync"
)

// mpsc has producers goroutines each send perProducer distinct values into
// one channel of the given capacity; the calling goroutine receives them all
// and checks their count and sum.
func mpsc(producers, perProducer uint64, capacity int) (uint64, error) {
	values := make(chan uint64, capacity)
	var wg sync.WaitGroup
	wg.Add(int(producers))
	for p := uint64(0); p < producers; p++ {
		go func(first uint64) {
			defer wg.Done()
			for v := first; v < first+perProducer; v++ {
				values <- v
			}
		}(p * perProducer)
	}
	go func() {
		wg.Wait()
		close(values)
	}()
	var count, sum uint64
	for v := range values {
		count++
		sum += v
	}
	n := producers * perProducer
	if count != n {
		return 0, fmt.Errorf("received %d values, expected %d", count, n)
	}
	if want := n * (n - 1) / 2; sum != want {
		return 0, fmt.Errorf("sum is %d, expected %d", sum, want)
	}
	return n, nil
}

// mutex has tasks goroutines each take one mutex iterations times, add one to
// the counter it protects, release it and yield.
func mutex(tasks, iterations uint64) (uint64, error) {
	var mu sync.Mutex
	var counter uint64
	var wg sync.WaitGroup
	wg.Add(int(tasks))
	for t := uint64(0); t < tasks; t++ {
		go func() {
			defer wg.Done()
			for i := uint64(0); i < iterations; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	if counter != tasks*iterations {
		return 0, fmt.Errorf("counter is %d, expected %d", counter, tasks*iterations)
	}
	return counter, nil
}
