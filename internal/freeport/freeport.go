// Package freeport hands out TCP ports that were free a moment ago, from a
// range of the caller's choosing, never the same port twice in a process.
//
// Asking the kernel for port 0 twice can return the same port once the first
// listener is closed, and its answers come from the ephemeral range (32768+
// on Linux), where the local ends of outgoing connections may take them
// before they are bound. A Range avoids both. Another process may still take
// a port between choice and bind; callers that bind later must retry.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Range hands out ports in [Low, High). The zero value is not usable; a
// Range must not be copied after first use.
type Range struct {
	Low, High int

	mu   sync.Mutex
	used map[int]bool
}

// Pick returns a port of the range that could be bound on host just now and
// that this Range has not returned before.
func (r *Range) Pick(host string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used == nil {
		r.used = make(map[int]bool)
	}
	for range 500 {
		p := r.Low + rand.IntN(r.High-r.Low)
		if r.used[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		r.used[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d on %s", r.Low, r.High, host)
}
