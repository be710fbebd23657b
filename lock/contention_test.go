package lock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/rosterkit/roster/lock"
)

// contender is one party competing for a lock: etcd's concurrency.Mutex or
// ours, behind the same face so both run through the same harness.
type contender interface {
	// lock acquires and returns the function that releases.
	lock(ctx context.Context) (release func(context.Context) error, err error)
	close()
}

// etcdContender is the baseline: etcd's concurrency.Mutex on its own session.
type etcdContender struct {
	s *concurrency.Session
	m *concurrency.Mutex
}

func newEtcdContender(t testing.TB, cli *clientv3.Client, pfx string) *etcdContender {
	t.Helper()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		t.Fatalf("concurrency session: %v", err)
	}
	return &etcdContender{s: s, m: concurrency.NewMutex(s, pfx)}
}

func (c *etcdContender) lock(ctx context.Context) (func(context.Context) error, error) {
	if err := c.m.Lock(ctx); err != nil {
		return nil, err
	}
	return c.m.Unlock, nil
}

func (c *etcdContender) close() { c.s.Close() }

// contend runs every contender in its own goroutine, each acquiring each
// times and running work (if not nil) while it holds, and returns the
// history and the wall time of the whole run. work's i says which
// contender runs it.
func contend(ctx context.Context, cs []contender, each int, work func(ctx context.Context, i int) error) (*history, time.Duration, error) {
	h := &history{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	start := time.Now()
	for i, c := range cs {
		wg.Go(func() {
			if errs[i] = contendOne(ctx, h, i, c, each, work); errs[i] != nil {
				cancel() // the others would wait for a holder that is gone
			}
		})
	}
	wg.Wait()
	return h, time.Since(start), errors.Join(errs...)
}

func contendOne(ctx context.Context, h *history, i int, c contender, each int, work func(context.Context, int) error) error {
	who := fmt.Sprint(i)
	for range each {
		waitFrom := time.Now()
		release, err := c.lock(ctx)
		if err != nil {
			return fmt.Errorf("contender %s: lock: %w", who, err)
		}
		from := time.Now()
		var werr error
		if work != nil {
			werr = work(ctx, i)
		}
		to := time.Now()
		h.add(interval{who: who, write: true, waitFrom: waitFrom, from: from, to: to})
		if err := release(ctx); err != nil {
			return fmt.Errorf("contender %s: unlock: %w", who, err)
		}
		if werr != nil {
			return fmt.Errorf("contender %s: work: %w", who, werr)
		}
	}
	return nil
}

// figures summarises a contended run.
type figures struct {
	acquisitions int
	elapsed      time.Duration
	p50, p99     time.Duration // hand-off: release call to the next holder's return
}

func summarise(h *history, elapsed time.Duration) figures {
	hs := h.handoffs()
	return figures{
		acquisitions: len(h.intervals()),
		elapsed:      elapsed,
		p50:          percentile(hs, 50),
		p99:          percentile(hs, 99),
	}
}

func (f figures) rate() float64 { return float64(f.acquisitions) / f.elapsed.Seconds() }

func (f figures) String() string {
	return fmt.Sprintf("%d acquisitions in %v: %.0f/s, hand-off p50 %v p99 %v",
		f.acquisitions, f.elapsed.Round(time.Millisecond), f.rate(),
		f.p50.Round(10*time.Microsecond), f.p99.Round(10*time.Microsecond))
}

// rosterContender is a Mutex of ours.
type rosterContender struct{ m *lock.Mutex }

func (c rosterContender) lock(ctx context.Context) (func(context.Context) error, error) {
	h, err := c.m.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return h.Release, nil
}

func (c rosterContender) close() { c.m.Close() }
