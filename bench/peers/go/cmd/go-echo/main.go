// Command go-echo is the Go TCP echo server of the weft echo benchmark.
//
// Usage:
//
//	go-echo --port P [--threads N]
//
// It listens on 127.0.0.1:P (0 picks a free port) and prints
// "listening on 127.0.0.1:<port>"; each connection reads up to 4 KiB at a time
// and writes it all back. It exits with status 0 on SIGINT or SIGTERM.
//
// --threads sets GOMAXPROCS: with 1, a single thread runs Go code (goroutines
// and the network poller); the runtime's helper threads (sysmon, idle
// threads parked in syscalls) stay, and their CPU time counts too.
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
)

// echo copies everything conn sends back to it until it closes or fails.
func echo(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		if _, err := conn.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	port := flag.Int("port", -1, "TCP port on 127.0.0.1, 0 for a free one (required)")
	threads := flag.Int("threads", 2, "number of threads (GOMAXPROCS)")
	flag.Parse()
	if *port < 0 || *port > 65535 || *threads < 1 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go-echo --port P [--threads N]")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)

	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-echo: %v\n", err)
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
			fmt.Fprintf(os.Stderr, "go-echo: %v\n", err)
			os.Exit(1)
		}
		go echo(conn) // Go sockets have TCP_NODELAY set by default.
	}
}
