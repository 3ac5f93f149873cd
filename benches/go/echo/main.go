// echo: the Go side of `compare.sh echo`.
//
// The classic Go TCP echo server: the main goroutine accepts in a loop and
// starts one goroutine per connection, which reads into a 4 KiB buffer and
// writes back what it read until the peer closes. GOMAXPROCS from the
// environment if set, else 2.
//
// Usage: echo ADDR (e.g. 127.0.0.1:9000); runs until killed.
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"time"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: echo ADDR")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo: %v\n", err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			// Out of descriptors, a connection reset before accept:
			// report it and keep serving.
			fmt.Fprintf(os.Stderr, "echo: accept: %v\n", err)
			time.Sleep(time.Millisecond)
			continue
		}
		go serve(c)
	}
}
