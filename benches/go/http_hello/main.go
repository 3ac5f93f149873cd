// http_hello: the Go side of `compare.sh http`.
//
// The net/http hello world every HTTP benchmark starts from, which gort's
// examples/http_hello.rs ports: one handler for every path, writing
// "Hello, World!" (net/http adds Date, Content-Length and, by sniffing the
// body, Content-Type: text/plain; charset=utf-8), served with keep-alive by
// http.ListenAndServe (a goroutine per connection). GOMAXPROCS from the
// environment if set, else 2.
//
// Usage: http_hello ADDR (e.g. 127.0.0.1:8080); runs until killed.
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
)

var body = []byte("Hello, World!")

func hello(w http.ResponseWriter, r *http.Request) {
	w.Write(body)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: http_hello ADDR")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}
	http.HandleFunc("/", hello)
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		fmt.Fprintf(os.Stderr, "http_hello: %v\n", err)
		os.Exit(1)
	}
}
