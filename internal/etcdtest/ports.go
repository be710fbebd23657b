package etcdtest

import (
	"net"
	"strconv"
	"testing"

	"github.com/rosterkit/roster/internal/freeport"
)

// Addresses for tests come from a range of their own, below the one package
// embedded picks from, so a test's choice and a member's own never meet.
var testPorts = freeport.Range{Low: 12000, High: 20000}

// FreeAddr returns a loopback host:port that was free a moment ago and
// that no other FreeAddr call of this process returned.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := testPorts.Pick("127.0.0.1")
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}
