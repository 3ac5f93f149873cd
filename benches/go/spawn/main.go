// spawn: the Go side of `compare.sh spawn`.
//
// On two Ps (GOMAXPROCS=2) the main goroutine starts N goroutines, each of
// which adds 1 to a shared counter and calls wg.Done(); wg.Add(1) is called
// before each `go`. The main goroutine then waits on the WaitGroup. The
// run is timed from the first `go` to the return of wg.Wait(); it is the
// first and only run of the process (cold, as on the Rust sides). Prints
//
//	ns=<elapsed / N> hwm_kib=<VmHWM>
//
// Usage: spawn N (GOMAXPROCS from the environment if set, else 2)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

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
		fmt.Fprintln(os.Stderr, "usage: spawn N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "spawn: N must be a positive number")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}
	var wg sync.WaitGroup
	var count uint64
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			atomic.AddUint64(&count, 1)
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if got := atomic.LoadUint64(&count); got != uint64(n) {
		fmt.Fprintf(os.Stderr, "spawn: %d of %d goroutines ran\n", got, n)
		os.Exit(1)
	}
	fmt.Printf("ns=%.2f hwm_kib=%d\n", float64(d.Nanoseconds())/float64(n), hwmKiB())
}
