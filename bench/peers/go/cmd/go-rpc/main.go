// Command go-rpc is the Go server of the RPC latency and server-CPU workloads
// of the weft benchmarks; the same server as weft-rpc (bench/rpc_server.c).
//
// Usage:
//
//	go-rpc --port P [--threads N] [--work-ns W]
//
// It listens on 127.0.0.1:P (0 picks a free port) and prints
// "listening on 127.0.0.1:<port>". Each connection reads up to 4 KiB at a
// time; for every whole 64-byte request in what it has, in order, it
// busy-waits W ns (default 2000) on the monotonic clock and copies the
// request into the reply buffer; then it writes all those replies in one
// Write and keeps any partial request for the next read. It exits with
// status 0 on SIGINT or SIGTERM. --threads sets GOMAXPROCS (default 2).
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

const (
	bufSize = 4096
	reqSize = 64
)

func spin(work time.Duration) {
	start := time.Now()
	for time.Since(start) < work {
	}
}

// serve answers the requests of one connection until it closes or fails.
func serve(conn net.Conn, work time.Duration) {
	defer conn.Close()
	buf := make([]byte, bufSize)
	out := make([]byte, bufSize)
	have := 0
	for {
		n, err := conn.Read(buf[have:])
		if err != nil {
			return
		}
		have += n
		whole := have / reqSize * reqSize
		if whole == 0 {
			continue
		}
		for i := 0; i < whole; i += reqSize {
			spin(work)
			copy(out[i:i+reqSize], buf[i:i+reqSize])
		}
		if _, err := conn.Write(out[:whole]); err != nil {
			return
		}
		have = copy(buf, buf[whole:have])
	}
}

func main() {
	port := flag.Int("port", -1, "TCP port on 127.0.0.1, 0 for a free one (required)")
	threads := flag.Int("threads", 2, "number of threads (GOMAXPROCS)")
	workNs := flag.Int64("work-ns", 2000, "busy-wait per request, in ns")
	flag.Parse()
	if *port < 0 || *port > 65535 || *threads < 1 || *workNs < 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go-rpc --port P [--threads N] [--work-ns W]")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)
	work := time.Duration(*workNs)

	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-rpc: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		listener.Close()
	}()
	for {
		conn, err := listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-rpc: %v\n", err)
			os.Exit(1)
		}
		go serve(conn, work) // Go sockets have TCP_NODELAY set by default.
	}
}
