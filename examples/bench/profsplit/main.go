// Command profsplit splits a proxy's CPU profile into the floor every Go
// proxy pays (the kernel's syscalls, net/http and httputil, the runtime) and
// the gateway's own work (its code, roster's discovery, OpenTelemetry), per
// request. It reads the stacks that go tool pprof -traces prints:
//
//	go tool pprof -traces cpu.pprof | profsplit -rate 14000 -seconds 10
//
// A sample belongs to the kernel when its leaf is a syscall; otherwise to
// whoever comes first from the leaf among the gateway's code and net/http's
// (the runtime's allocations inside a function count for its caller), or to
// the runtime when neither is on the stack. In the bare proxy's profile the
// "own" share is its Rewrite function, the only code of its own.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

type sample struct {
	d     time.Duration
	stack []string // leaf first
}

// own is the gateway's code; a compose of httptrace runs by reflection only
// because the gateway adds a trace of its own.
var own = []string{"main.", "github.com/rosterkit/", "go.opentelemetry.io/", "net/http/httptrace.(*ClientTrace).compose"}

// transparent frames are net/http helpers whose caller decides whose work
// they are.
var transparent = []string{"net/http.(*Request).WithContext", "net/http/httptrace.WithClientTrace", "net/http/httptrace.ContextClientTrace"}

var netHTTP = []string{"net/http", "net.", "net/textproto", "net/url", "bufio.", "internal/poll", "vendor/golang.org/x/net"}

func hasPrefix(s string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

const (
	kernel  = "kernel: syscalls (read, write, epoll, futex)"
	nethttp = "net/http + httputil: parsing, headers, transport, copies, their allocations"
	gc      = "runtime: GC in the background (mark, sweep)"
	sched   = "runtime: scheduler, netpoll"
	runtime = "runtime: other"
	mine    = "the gateway's own: its code, discovery, OpenTelemetry"
)

func classify(stack []string) (kind, owner string) {
	leaf := stack[0]
	if strings.Contains(leaf, "Syscall") || strings.HasPrefix(leaf, "syscall.") ||
		strings.HasPrefix(leaf, "runtime.futex") || strings.Contains(leaf, "epoll") || strings.HasPrefix(leaf, "runtime.usleep") {
		return kernel, ""
	}
	for _, f := range stack {
		if hasPrefix(f, []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}) {
			return gc, ""
		}
	}
	for _, f := range stack {
		switch {
		case hasPrefix(f, transparent):
		case hasPrefix(f, own):
			return mine, f
		case hasPrefix(f, netHTTP):
			return nethttp, ""
		}
	}
	for _, f := range stack {
		if hasPrefix(f, []string{"runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.goexit0", "runtime.mcall", "runtime.netpoll"}) {
			return sched, ""
		}
	}
	return runtime, ""
}

// parse reads the output of go tool pprof -traces: after each separator, a
// line with the sample's time and its leaf, then one line per caller.
func parse(r io.Reader) ([]sample, error) {
	var out []sample
	first := false // the next line starts a sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			first = true
			continue
		}
		text := strings.TrimSpace(strings.TrimSuffix(line, " (inline)"))
		switch {
		case text == "":
		case first:
			first = false
			t, fn, _ := strings.Cut(text, " ")
			d, err := time.ParseDuration(t)
			if err != nil || strings.TrimSpace(fn) == "" {
				return nil, fmt.Errorf("not a sample's first line: %q", line)
			}
			out = append(out, sample{d: d, stack: []string{strings.TrimSpace(fn)}})
		case len(out) > 0:
			out[len(out)-1].stack = append(out[len(out)-1].stack, text)
		}
	}
	return out, sc.Err()
}

func main() {
	rate := flag.Float64("rate", 0, "requests per second under the profile (0: shares only)")
	secs := flag.Float64("seconds", 10, "seconds the profile lasted")
	top := flag.Int("top", 8, "how many of the gateway's own functions to list")
	flag.Parse()
	samples, err := parse(os.Stdin)
	if err != nil || len(samples) == 0 {
		fmt.Fprintln(os.Stderr, "profsplit: no samples on stdin (want go tool pprof -traces output):", err)
		os.Exit(1)
	}
	var total time.Duration
	by := map[string]time.Duration{}
	owners := map[string]time.Duration{}
	for _, s := range samples {
		total += s.d
		kind, owner := classify(s.stack)
		by[kind] += s.d
		if owner != "" {
			owners[owner] += s.d
		}
	}
	reqs := *rate * *secs
	line := func(d time.Duration, what string) {
		per := ""
		if reqs > 0 {
			per = fmt.Sprintf(" %6.1f µs/req", float64(d.Microseconds())/reqs)
		}
		fmt.Printf("%5.1f%%%s  %s\n", 100*float64(d)/float64(total), per, what)
	}
	kinds := sortedKeys(by)
	for _, k := range kinds {
		line(by[k], k)
	}
	line(total, "all samples ("+strconv.FormatFloat(total.Seconds(), 'f', 2, 64)+" s)")
	if len(owners) > 0 {
		groups := map[string]time.Duration{}
		for n, d := range owners {
			switch {
			case strings.HasPrefix(n, "go.opentelemetry.io/"):
				groups["OpenTelemetry (its histograms' records)"] += d
			case strings.HasPrefix(n, "github.com/rosterkit/"):
				groups["roster (picker, discovery)"] += d
			default:
				groups["the gateway's code"] += d
			}
		}
		fmt.Println("the gateway's own, by whose code:")
		for _, g := range sortedKeys(groups) {
			line(groups[g], "  "+g)
		}
		fmt.Println("the gateway's own, by its first function from the leaf:")
		names := sortedKeys(owners)
		for i, n := range names {
			if i == *top {
				break
			}
			line(owners[n], "  "+n)
		}
	}
}

func sortedKeys(m map[string]time.Duration) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	return keys
}
