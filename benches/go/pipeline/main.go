// pipeline: the Go side of `compare.sh pipeline`.
//
// On two Ps (GOMAXPROCS=2): a producer goroutine sends 0..M-1 on `in`
// (buffered, capacity CAP) and closes it; W worker goroutines each range
// over `in` and send 2v+1 on `out` (capacity CAP); when all workers are
// done, a goroutine closes `out`; the main goroutine is the collector: it
// ranges over `out`, counting and summing (the sum of 2v+1 over 0..M-1 is
// M*M, checked). After an untimed warm-up run with M/10 items, the timed
// run goes from starting the goroutines to the collector's last receive.
// Prints
//
//	ns=<elapsed / M> hwm_kib=<VmHWM>
//
// Usage: pipeline M W CAP (GOMAXPROCS from the environment if set, else 2)
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

// run passes m items through the pipeline and returns the elapsed time.
func run(m, workers, capacity int) time.Duration {
	in := make(chan uint64, capacity)
	out := make(chan uint64, capacity)
	start := time.Now()
	go func() {
		for i := 0; i < m; i++ {
			in <- uint64(i)
		}
		close(in)
	}()
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			for v := range in {
				out <- 2*v + 1
			}
			wg.Done()
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	var sum, count uint64
	for v := range out {
		sum += v
		count++
	}
	d := time.Since(start)
	if count != uint64(m) || sum != uint64(m)*uint64(m) {
		fmt.Fprintf(os.Stderr, "pipeline: %d items summing to %d, expected %d and %d\n",
			count, sum, m, uint64(m)*uint64(m))
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
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: pipeline M W CAP")
		os.Exit(2)
	}
	var a [3]int
	for i := range a {
		v, err := strconv.Atoi(os.Args[i+1])
		if err != nil || v <= 0 {
			fmt.Fprintln(os.Stderr, "pipeline: M, W and CAP must be positive numbers")
			os.Exit(2)
		}
		a[i] = v
	}
	m, w, c := a[0], a[1], a[2]
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}
	run(m/10+1, w, c)
	d := run(m, w, c)
	fmt.Printf("ns=%.2f hwm_kib=%d\n", float64(d.Nanoseconds())/float64(m), hwmKiB())
}
