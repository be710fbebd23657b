package etcdtest

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Addresses for tests are chosen from a range of their own: below Linux's
// ephemeral ports (32768+), where the local ends of outgoing connections
// would take them, and below the range package embedded picks from, so a
// test's choice and a member's own never meet. Within the process no port
// is handed out twice: asking the kernel for port 0 twice can return the
// same port, once the first listener is closed.
const (
	testPortLow  = 12000
	testPortHigh = 20000
)

var testPorts struct {
	sync.Mutex
	used map[int]bool
}

// FreeAddr returns a loopback host:port that was free a moment ago and
// that no other FreeAddr call of this process returned.
func FreeAddr(t testing.TB) string {
	t.Helper()
	testPorts.Lock()
	defer testPorts.Unlock()
	if testPorts.used == nil {
		testPorts.used = make(map[int]bool)
	}
	for range 500 {
		p := testPortLow + rand.IntN(testPortHigh-testPortLow)
		if testPorts.used[p] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		testPorts.used[p] = true
		return addr
	}
	t.Fatal("etcdtest: no free loopback port")
	return ""
}
