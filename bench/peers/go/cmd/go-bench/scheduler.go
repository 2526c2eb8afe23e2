// Scheduler workloads: spawning, joining, yielding, message round trips,
// spawn chains, aborting goroutines and cancelling them through contexts.

package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// spawnMany starts n goroutines that each bump a shared counter; the one that
// brings it to n wakes the spawner.
func spawnMany(n uint64) (uint64, error) {
	var count atomic.Uint64
	done := make(chan struct{})
	for i := uint64(0); i < n; i++ {
		go func() {
			if count.Add(1) == n {
				close(done)
			}
		}()
	}
	<-done
	if c := count.Load(); c != n {
		return 0, fmt.Errorf("counter is %d, expected %d", c, n)
	}
	return n, nil
}

// spawnJoin starts n goroutines returning their index, each through its own
// one-slot channel (Go's join handle), then receives from every channel in
// spawn order and checks the sum.
func spawnJoin(n uint64) (uint64, error) {
	handles := make([]chan uint64, n)
	for i := range handles {
		h := make(chan uint64, 1)
		handles[i] = h
		go func(i uint64) { h <- i }(uint64(i))
	}
	var sum uint64
	for _, h := range handles {
		sum += <-h
	}
	if want := n * (n - 1) / 2; sum != want {
		return 0, fmt.Errorf("sum is %d, expected %d", sum, want)
	}
	return n, nil
}

// yieldMany runs tasks goroutines that each yield the processor yields times.
func yieldMany(tasks, yields uint64) (uint64, error) {
	var total atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(int(tasks))
	for t := uint64(0); t < tasks; t++ {
		go func() {
			defer wg.Done()
			for i := uint64(0); i < yields; i++ {
				runtime.Gosched()
			}
			total.Add(yields)
		}()
	}
	wg.Wait()
	if got := total.Load(); got != tasks*yields {
		return 0, fmt.Errorf("%d yields, expected %d", got, tasks*yields)
	}
	return tasks * yields, nil
}

// request is a ping_pong message: a value and the channel its reply goes to.
type request struct {
	value uint64
	reply chan uint64
}

// pingPong runs pairs client/server pairs. Each client sends trips requests,
// each carrying a fresh one-slot reply channel, and waits for each reply (the
// value plus one) before sending the next.
func pingPong(pairs, trips uint64) (uint64, error) {
	var total, bad atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(int(2 * pairs))
	for p := uint64(0); p < pairs; p++ {
		requests := make(chan request, 1)
		go func() {
			defer wg.Done()
			for r := range requests {
				r.reply <- r.value + 1
			}
		}()
		go func() {
			defer wg.Done()
			defer close(requests)
			for i := uint64(0); i < trips; i++ {
				reply := make(chan uint64, 1)
				requests <- request{i, reply}
				if <-reply != i+1 {
					bad.Add(1)
				}
			}
			total.Add(trips)
		}()
	}
	wg.Wait()
	if b := bad.Load(); b != 0 {
		return 0, fmt.Errorf("%d wrong replies", b)
	}
	if got := total.Load(); got != pairs*trips {
		return 0, fmt.Errorf("%d round trips, expected %d", got, pairs*trips)
	}
	return pairs * trips, nil
}

// spawnLink starts the goroutine at depth depth of a chain n long. Every
// goroutine starts its successor and returns; the last reports its depth.
func spawnLink(depth, n uint64, done chan<- uint64) {
	go func() {
		if depth == n {
			done <- depth
		} else {
			spawnLink(depth+1, n, done)
		}
	}()
}

// chainedSpawn starts a chain of n goroutines, each starting the next; the
// last one signals completion.
func chainedSpawn(n uint64) (uint64, error) {
	done := make(chan uint64, 1)
	spawnLink(1, n, done)
	if depth := <-done; depth != n {
		return 0, fmt.Errorf("chain ended at depth %d, expected %d", depth, n)
	}
	return n, nil
}

// abortChurn starts n goroutines that each block on their own abort channel,
// aborts every one by closing it, waits for all and checks that each saw the
// abort and ran its deferred drop hook exactly once.
func abortChurn(n uint64) (uint64, error) {
	var cancelled, drops atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(int(n))
	aborts := make([]chan struct{}, n)
	for i := range aborts {
		abort := make(chan struct{})
		aborts[i] = abort
		go func() {
			defer wg.Done()
			defer drops.Add(1)
			<-abort
			cancelled.Add(1)
		}()
	}
	for _, abort := range aborts {
		close(abort)
	}
	wg.Wait()
	if c := cancelled.Load(); c != n {
		return 0, fmt.Errorf("%d goroutines reported cancelled, expected %d", c, n)
	}
	if d := drops.Load(); d != n {
		return 0, fmt.Errorf("%d drop hooks ran, expected %d", d, n)
	}
	return n, nil
}

// tokenCancel starts n goroutines that each wait on a child context of one
// parent, cancels the parent and waits for every goroutine to exit.
func tokenCancel(n uint64) (uint64, error) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	var exited atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(int(n))
	for i := uint64(0); i < n; i++ {
		child, cancelChild := context.WithCancel(parent)
		go func() {
			defer wg.Done()
			defer cancelChild()
			<-child.Done()
			if errors.Is(child.Err(), context.Canceled) {
				exited.Add(1)
			}
		}()
	}
	cancelParent()
	wg.Wait()
	if e := exited.Load(); e != n {
		return 0, fmt.Errorf("%d goroutines saw the cancellation, expected %d", e, n)
	}
	return n, nil
}
