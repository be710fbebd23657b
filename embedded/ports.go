package embedded

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Ports are chosen below Linux's ephemeral range (32768+) so that they do not
// collide with the local ports of outgoing connections, and never handed out
// twice in one process, so members started in parallel do not race for them.
// Another process may still take one between choice and bind; Start retries.
const (
	portLow  = 20000
	portHigh = 32000
)

var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// freePort returns a port on host that was free a moment ago.
func freePort(host string) (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = make(map[int]bool)
	}
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow)
		if handedOut.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		handedOut.ports[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("embedded: no free port on %s", host)
}
