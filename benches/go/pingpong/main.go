// pingpong: the Go side of `compare.sh pingpong`.
//
// Two goroutines pass an int back and forth over two unbuffered channels:
// the pinger sends on `ping` and receives the reply on `pong`, the ponger
// receives on `ping` and sends the value plus one on `pong`. One round
// trip is one send and one receive on each side. The pinger times N round
// trips (from its first send to its last receive, after an untimed warm-up
// of N/10 in a separate pair) and checks the value it gets back. Prints
//
//	ns=<elapsed / N> hwm_kib=<VmHWM>
//
// Usage: pingpong N (GOMAXPROCS from the environment; compare.sh runs it
// with 1 and 2; else 1)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rounds runs one ping-pong pair for n round trips and returns the time
// the pinger measured.
func rounds(n int) time.Duration {
	ping := make(chan int)
	pong := make(chan int)
	var wg sync.WaitGroup
	var d time.Duration
	wg.Add(2)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		wg.Done()
	}()
	go func() {
		v := 0
		start := time.Now()
		for i := 0; i < n; i++ {
			ping <- v
			v = <-pong
		}
		d = time.Since(start)
		close(ping)
		if v != n {
			fmt.Fprintf(os.Stderr, "pingpong: got %d after %d round trips\n", v, n)
			os.Exit(1)
		}
		wg.Done()
	}()
	wg.Wait()
	return d
}

// hwmKiB is the process's peak resident set (VmHWM), in KiB.
func hwmKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				v, _ := strconv.Atoi(f[1])
				return v
			}
		}
	}
	return 0
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pingpong N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "pingpong: N must be a positive number")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	rounds(n/10 + 1)
	d := rounds(n)
	fmt.Printf("ns=%.2f hwm_kib=%d\n", float64(d.Nanoseconds())/float64(n), hwmKiB())
}
