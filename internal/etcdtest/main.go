package etcdtest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// LeakGrace is how long Main waits for goroutines to end after the tests
// passed before it calls them leaked. etcd itself needs a few seconds after a
// cluster member's Close: a peer HTTP connection that served a short request
// just before can stay open until its 5 s read deadline passes (etcd's
// deadline-per-Read connection wrapper re-arms the deadline net/http sets to
// abort its background read). A single member has no peer connections and
// settles at once.
const LeakGrace = 12 * time.Second

// Main runs a package's tests, then fails the package if any goroutine is
// still running LeakGrace after they passed. Use it as the whole body of
// TestMain.
//
// In a child process started by StartChild, Main runs the child's role
// instead of the tests.
func Main(m *testing.M) {
	runRole()
	code := m.Run()
	removeBinary()
	if code == 0 {
		if err := settle(LeakGrace); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: Errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// settle waits until no unexpected goroutine runs, or reports those left at
// the deadline.
func settle(grace time.Duration) error {
	deadline := time.Now().Add(grace)
	for {
		err := goleak.Find()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // polling, bounded by the deadline
	}
}
