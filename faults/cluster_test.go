package faults

import (
	"sync"
	"testing"

	"github.com/rosterkit/roster/embedded/embeddedtest"
)

// cluster is the etcd cluster under test, as far as the suite needs it:
// where its members serve clients, who leads, and ways to break and mend
// them. Clients reach it only over the network, through Endpoint, so the
// same suite runs against members embedded in the test process and
// against standalone etcd processes.
//
// Methods fail the test on error; Restart may be called from several
// goroutines at once.
type cluster interface {
	// Size is the number of members.
	Size() int
	// Endpoint is member i's client URL; it stays the same across
	// restarts.
	Endpoint(i int) string
	// Leader waits until the running members agree on a Raft leader and
	// returns its index.
	Leader(t *testing.T) int
	// Kill stops member i as a crash would (SIGKILL for a process).
	Kill(t *testing.T, i int)
	// Stop stops member i gracefully.
	Stop(t *testing.T, i int)
	// Restart starts a stopped member i again on its data and addresses,
	// and returns once it serves clients. A member needs a quorum for
	// that: to bring back a majority, restart its members concurrently.
	Restart(t *testing.T, i int)
}

// restartAll restarts the given members concurrently.
func restartAll(t *testing.T, c cluster, members []int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, i := range members {
		// wg.Go's deferred Done also runs if Restart fails the test and
		// ends the goroutine.
		wg.Go(func() { c.Restart(t, i) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// stopAll stops the given members concurrently, killing them if kill.
func stopAll(t *testing.T, c cluster, members []int, kill bool) {
	t.Helper()
	var wg sync.WaitGroup
	for _, i := range members {
		wg.Go(func() {
			if kill {
				c.Kill(t, i)
			} else {
				c.Stop(t, i)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// embeddedCluster is a cluster of members embedded in the test process.
type embeddedCluster struct {
	c *embeddedtest.Cluster
}

func startEmbedded(t *testing.T, n int) *embeddedCluster {
	return &embeddedCluster{c: embeddedtest.StartCluster(t, n)}
}

func (e *embeddedCluster) Size() int             { return len(e.c.Members) }
func (e *embeddedCluster) Endpoint(i int) string { return e.c.Members[i].Endpoints()[0] }

func (e *embeddedCluster) Leader(t *testing.T) int {
	t.Helper()
	leader := e.c.Leader()
	for i, m := range e.c.Members {
		if m == leader {
			return i
		}
	}
	t.Fatal("faults: the leader is not a member")
	return -1
}

func (e *embeddedCluster) Kill(t *testing.T, i int)    { e.c.Members[i].Kill() }
func (e *embeddedCluster) Stop(t *testing.T, i int)    { e.c.Members[i].Stop() }
func (e *embeddedCluster) Restart(t *testing.T, i int) { e.c.Members[i].Restart() }
