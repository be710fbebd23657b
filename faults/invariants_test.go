package faults

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
)

// patience bounds every wait for the system to heal after a fault. It is
// generous for a loaded two-core machine; the measured times are logged.
const patience = 45 * time.Second

// waitForPoll is how often waitFor looks: what its timings may be late by.
const waitForPoll = 20 * time.Millisecond

// waitFor polls cond until it holds, failing the test after patience.
// It returns how long that took.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if t.Failed() {
			t.FailNow()
		}
		if time.Since(start) > patience {
			t.Fatalf("%s: not within %v", what, patience)
		}
		time.Sleep(waitForPoll) // polling etcd and the caches for a condition
	}
	return time.Since(start)
}

// truth reads a service as etcd has it, at rev (0: now).
func (s *suite) truth(svc string, rev int64) ([]roster.Instance, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := s.observer.Get(ctx, keys.ServicePrefix(keys.DefaultNamespace, svc), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, 0, err
	}
	var out []roster.Instance
	for _, kv := range resp.Kvs {
		_, id, ok := keys.ParseInstanceKey(keys.DefaultNamespace, string(kv.Key))
		if !ok {
			return nil, 0, fmt.Errorf("foreign key %q", kv.Key)
		}
		inst, err := roster.DecodeInstance(svc, id, kv.Value)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, inst)
	}
	return out, resp.Header.Revision, nil
}

// currentRevision is etcd's revision now.
func (s *suite) currentRevision(t *testing.T) int64 {
	t.Helper()
	var rev int64
	waitFor(t, "etcd answers", func() bool {
		_, r, err := s.truth(services[0], 0)
		rev = r
		return err == nil
	})
	return rev
}

// awaitConverged waits until every cache of cls is current: it has
// confirmed its view at a revision at least etcd's revision now, and the
// view is exactly what etcd held at the view's revision. Every view sampled
// on the way, current or not, must also be exactly etcd's at its revision:
// a cache may lag, but never show what never was.
func (s *suite) awaitConverged(t *testing.T, cls []*client) time.Duration {
	t.Helper()
	since := s.currentRevision(t)
	start := time.Now()
	for _, cl := range cls {
		for _, c := range cl.caches {
			waitFor(t, fmt.Sprintf("%s's %s cache converges", cl.name, c.Service()), func() bool {
				snap := c.Snapshot()
				if !snap.Synced() {
					return false
				}
				want, _, err := s.truth(c.Service(), snap.Revision())
				if err != nil {
					return false // compacted past the view, or etcd out of reach: sample again
				}
				got := slices.Collect(snap.All())
				if !equalInstances(got, want) {
					t.Errorf("%s's %s cache at revision %d differs from etcd at that revision:\n%s",
						cl.name, c.Service(), snap.Revision(), diff(got, want))
					return false
				}
				return snap.Revision() >= since
			})
		}
	}
	return time.Since(start)
}

func equalInstances(a, b []roster.Instance) bool {
	return slices.EqualFunc(a, b, func(x, y roster.Instance) bool { return assert.ObjectsAreEqual(x, y) })
}

func diff(got, want []roster.Instance) string {
	return fmt.Sprintf("cache: %+v\netcd:  %+v", got, want)
}

// awaitRegistered waits until every registrar says it is healthy and etcd
// agrees: each of its instances is in etcd under its lease, which etcd
// still has.
func (s *suite) awaitRegistered(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	for _, cl := range s.clients {
		waitFor(t, cl.name+"'s instances registered under a live lease", func() bool {
			st := cl.reg.Status()
			if !st.Healthy || st.Instances != len(services) {
				return false
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for _, inst := range cl.reg.Instances() {
				resp, err := s.observer.Get(ctx, keys.InstanceKey(keys.DefaultNamespace, inst.Service, inst.ID))
				if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].Lease != int64(st.Lease) {
					return false
				}
			}
			ttl, err := s.observer.TimeToLive(ctx, st.Lease)
			return err == nil && ttl.TTL > 0
		})
	}
	return time.Since(start)
}

// mark is a point in the workload's progress.
type mark struct{ elections, locks int }

func (s *suite) mark(except string) mark {
	return mark{s.elections.applied(except), s.locks.applied(except)}
}

// awaitProgress waits until both the election and the mutex have had
// applied fenced writes since m by clients other than except: someone
// leads and someone holds, and etcd agrees.
func (s *suite) awaitProgress(t *testing.T, m mark, except string) time.Duration {
	t.Helper()
	what := "election and mutex make progress"
	if except != "" {
		what += " without " + except
	}
	return waitFor(t, what, func() bool {
		now := s.mark(except)
		return now.elections > m.elections && now.locks > m.locks
	})
}

// leaseGone waits until etcd no longer has lease id.
func (s *suite) leaseGone(t *testing.T, what string, id clientv3.LeaseID) time.Duration {
	t.Helper()
	return waitFor(t, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := s.observer.TimeToLive(ctx, id)
		return err == nil && resp.TTL == -1
	})
}

// listsOf sums the lists the caches of cl have made.
func listsOf(cl *client) uint64 {
	var n uint64
	for _, c := range cl.caches {
		n += c.Stats().Lists
	}
	return n
}
