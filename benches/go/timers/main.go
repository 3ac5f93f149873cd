// timers: the Go side of `compare.sh timers`.
//
// On two Ps (GOMAXPROCS=2) the main goroutine starts COROUTINES goroutines
// (default 10,000) that each call time.Sleep(time.Millisecond) SLEEPS times
// (default 100), and waits for all of them on a WaitGroup. Ideal wall time:
// 100 ms. Prints
//
//	wall_ms=<x> cpu_ms=<y>
//
// the wall time from the first `go` to the return of wg.Wait(), and the
// process's CPU time (user + sys, all threads, getrusage(RUSAGE_SELF))
// over the same span, as the Rust sides do.
//
// Usage: timers [COROUTINES [SLEEPS]] (GOMAXPROCS from the environment if
// set, else 2)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// cpuTime is the process's CPU time so far (user + system, all threads).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintf(os.Stderr, "timers: getrusage: %v\n", err)
		os.Exit(1)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func arg(i int, def int) int {
	if len(os.Args) <= i {
		return def
	}
	n, err := strconv.Atoi(os.Args[i])
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "timers: '%s' is not a positive number\n", os.Args[i])
		os.Exit(2)
	}
	return n
}

func main() {
	if len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: timers [COROUTINES [SLEEPS]]")
		os.Exit(2)
	}
	n, sleeps := arg(1, 10000), arg(2, 100)
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			for j := 0; j < sleeps; j++ {
				time.Sleep(time.Millisecond)
			}
			wg.Done()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	cpu := cpuTime() - cpu0
	fmt.Printf("wall_ms=%.2f cpu_ms=%.2f\n", float64(wall.Nanoseconds())/1e6, float64(cpu.Nanoseconds())/1e6)
}
