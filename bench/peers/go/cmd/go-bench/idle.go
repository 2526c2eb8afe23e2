// idle_tasks: what one waiting goroutine costs in memory (bench/workloads_idle.c
// is the weft side and says what is measured).
//
// n goroutines each wait for one shared channel to be closed. Once every one
// has started and is about to block, VmRSS is read again; the difference from
// before the spawns, divided by n, goes to stderr as "bytes_per_task N". Then
// the channel is closed and the workload ends when every goroutine has exited.

package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// rssBytes returns this process's resident set size now (VmRSS, as weft and
// tokio read it).
func rssBytes() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "VmRSS:" {
			kib, err := strconv.ParseInt(fields[1], 10, 64)
			return kib * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// countUp closes wake when it brings counter to n.
func countUp(counter *atomic.Uint64, n uint64, wake chan struct{}) {
	if counter.Add(1) == n {
		close(wake)
	}
}

func idleTasks(n uint64) (uint64, error) {
	var parked, exited atomic.Uint64
	allParked, allExited := make(chan struct{}), make(chan struct{})
	release := make(chan struct{})
	before, err := rssBytes()
	if err != nil {
		return 0, err
	}
	for i := uint64(0); i < n; i++ {
		go func() {
			countUp(&parked, n, allParked)
			<-release
			countUp(&exited, n, allExited)
		}()
	}
	<-allParked
	after, err := rssBytes()
	close(release)
	<-allExited
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "bytes_per_task %d\n", (after-before)/int64(n))
	return n, nil
}
