// mutex: the Go side of `compare.sh mutex`.
//
// On two Ps (GOMAXPROCS=2) the main goroutine starts G goroutines that
// each do N times `mu.Lock(); count++; mu.Unlock()` on one shared
// sync.Mutex, and waits for all of them on a WaitGroup. After an untimed
// warm-up run of N/10 locks per goroutine, the timed run goes from the
// first `go` to the return of wg.Wait(); the count is checked. Prints
//
//	ns=<elapsed / (G*N)> hwm_kib=<VmHWM>
//
// Usage: mutex G N (GOMAXPROCS from the environment if set, else 2)
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

// run has g goroutines take the mutex n times each and returns the
// elapsed time.
func run(g, n int) time.Duration {
	var mu sync.Mutex
	count := 0
	var wg sync.WaitGroup
	wg.Add(g)
	start := time.Now()
	for i := 0; i < g; i++ {
		go func() {
			for j := 0; j < n; j++ {
				mu.Lock()
				count++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(start)
	mu.Lock()
	got := count
	mu.Unlock()
	if got != g*n {
		fmt.Fprintf(os.Stderr, "mutex: count %d, expected %d\n", got, g*n)
		os.Exit(1)
	}
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
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mutex G N")
		os.Exit(2)
	}
	g, err1 := strconv.Atoi(os.Args[1])
	n, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || g <= 0 || n <= 0 {
		fmt.Fprintln(os.Stderr, "mutex: G and N must be positive numbers")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}
	run(g, n/10+1)
	d := run(g, n)
	fmt.Printf("ns=%.2f hwm_kib=%d\n", float64(d.Nanoseconds())/float64(g*n), hwmKiB())
}
