// yield: the Go side of `compare.sh yield`.
//
// Two goroutines each call runtime.Gosched() N times on one P
// (GOMAXPROCS=1); the main goroutine waits for both on a WaitGroup.
// After an untimed warm-up of N/10 yields each, prints
//
//	ns=<elapsed / (2N)> hwm_kib=<VmHWM>
//
// Usage: yield N (GOMAXPROCS from the environment if set, else 1)
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

// rounds runs two goroutines that each yield n times and returns the
// elapsed time.
func rounds(n int) time.Duration {
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	for i := 0; i < 2; i++ {
		go func() {
			for j := 0; j < n; j++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return time.Since(start)
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
		fmt.Fprintln(os.Stderr, "usage: yield N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "yield: N must be a positive number")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	rounds(n / 10)
	d := rounds(n)
	fmt.Printf("ns=%.2f hwm_kib=%d\n", float64(d.Nanoseconds())/float64(2*n), hwmKiB())
}
