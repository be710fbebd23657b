package etcdtest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/rosterkit/roster/internal/freeport"
)

// Addresses for tests come from a range of their own, below the one package
// embedded picks from, so a test's choice and a member's own never meet.
const portsLow, portsHigh = 12000, 20000

// portSlices is how many test binaries at once get a part of the range of
// their own.
const portSlices = 8

var (
	portsOnce sync.Once
	ownPorts  *freeport.Range // this process's slice, nil if none was free
	allPorts  = &freeport.Range{Low: portsLow, High: portsHigh}
	held      []*os.File // the lock file, open while the process lives
)

// claimPorts takes a slice of the range for this process, under a lock
// file that the kernel releases when the process ends. Test binaries run
// side by side: without slices, one could take a port that another's
// member had just freed to restart on it, or pick the same port at once.
func claimPorts() {
	size := (portsHigh - portsLow) / portSlices
	for k := range portSlices {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("roster-etcdtest-ports-%d.lock", k))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			held = append(held, f)
			ownPorts = &freeport.Range{Low: portsLow + k*size, High: portsLow + (k+1)*size}
			return
		}
		f.Close()
	}
}

// FreeAddr returns a loopback host:port that was free a moment ago and
// that no other FreeAddr call of this process returned.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := pickPort()
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// pickPort picks a loopback port from this process's slice of the range
// while it lasts, then from the whole range.
func pickPort() (int, error) {
	portsOnce.Do(claimPorts)
	if ownPorts != nil {
		if p, err := ownPorts.Pick("127.0.0.1"); err == nil {
			return p, nil
		}
	}
	return allPorts.Pick("127.0.0.1")
}
