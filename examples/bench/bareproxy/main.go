// Command bareproxy is the floor the gateway is measured against: a plain
// net/http/httputil.ReverseProxy, tuned as a Go proxy in front of a fixed set
// of upstreams would be, with nothing of roster in it. It serves
// /svc/<anything>/<path> by sending <path> to the next upstream in turn.
//
//	bareproxy -listen 127.0.0.1:9000 -upstreams 127.0.0.1:9101,127.0.0.1:9102
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	_ "net/http/pprof"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to serve on")
	upstreams := flag.String("upstreams", "", "comma-separated host:port of the upstreams")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (off by default), to profile it as the gateway is")
	flag.Parse()
	targets := strings.Split(*upstreams, ",")
	if *upstreams == "" {
		fmt.Fprintln(os.Stderr, "bareproxy: -upstreams is required")
		os.Exit(2)
	}
	if *pprofAddr != "" {
		// DefaultServeMux holds net/http/pprof's handlers; the proxy has its own.
		go func() { fmt.Fprintln(os.Stderr, "bareproxy: pprof:", http.ListenAndServe(*pprofAddr, nil)) }()
	}
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			// /svc/<service>/<rest> → /<rest>, as the gateway routes.
			path := r.In.URL.Path
			if rest, ok := strings.CutPrefix(path, "/svc/"); ok {
				if _, tail, ok := strings.Cut(rest, "/"); ok {
					path = "/" + tail
				}
			}
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = targets[next.Add(1)%uint64(len(targets))]
			r.Out.URL.Path, r.Out.URL.RawPath = path, ""
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		// Without a pool, ReverseProxy allocates a 32 KiB copy buffer per
		// response: a tuned proxy reuses them.
		BufferPool: pool{},
	}
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("bareproxy serving at http://%s\n", *listen)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

type pool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (pool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (pool) Put(b []byte) { buffers.Put(&b) }
