package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/session"
)

// Monitor reports the loss of a held key: Done is closed when the session
// ends (its local deadline passed, or etcd said the lease is gone) or when
// the key is deleted or replaced, whichever is first. The session's end is
// noticed by its own goroutine, so it is reported at the session's
// deadline even while the key's watch is stuck behind a partition.
type Monitor struct {
	cli   *clientv3.Client
	s     *session.Session
	key   string
	rev   int64
	done  chan struct{}
	err   atomic.Pointer[error]
	once  sync.Once
	onEnd func(error)

	ctx    context.Context // cancelled when the monitor ends
	cancel context.CancelFunc
	stop   context.CancelFunc // cancels the clean-up after the end, too
	bg     context.Context
	wg     sync.WaitGroup
}

// NewMonitor starts monitoring key, held with create revision rev on
// session s, from store revision from: pass the revision at which the key
// was last seen held, plus one, so that nothing in between is missed.
// onEnd, if not nil, is called once with the cause as the monitor ends,
// right after Done is closed, by whoever ends it: keep it short.
func NewMonitor(s *session.Session, key string, rev, from int64, onEnd func(error)) *Monitor {
	m := &Monitor{cli: s.Client(), s: s, key: key, rev: rev, done: make(chan struct{}), onEnd: onEnd}
	m.bg, m.stop = context.WithCancel(context.Background())
	m.ctx, m.cancel = context.WithCancel(m.bg)
	m.wg.Go(m.awaitSession)
	m.wg.Go(func() { m.watch(from) })
	return m
}

// Done is closed when the key is lost or the monitor stopped. A session
// that ended is noticed here too, not only by the monitor's goroutine, so
// that whoever asks after a pause of the process learns of the loss first.
func (m *Monitor) Done() <-chan struct{} {
	m.check()
	return m.done
}

// Err is nil until Done is closed, then why: the session's error
// (session.ErrExpired, ErrLeaseGone, ErrClosed), ErrKeyDeleted, or the
// cause given to Stop.
func (m *Monitor) Err() error {
	m.check()
	if p := m.err.Load(); p != nil {
		return *p
	}
	return nil
}

// check ends the monitor at once if its session has ended.
func (m *Monitor) check() {
	if m.err.Load() == nil {
		if err := m.s.Err(); err != nil {
			m.end(err)
		}
	}
}

// End ends the monitor with cause, unless it ended already: Done is closed
// when End returns. It does not wait for the monitor's goroutines, so a
// release can close Done, send its delete at once, and Stop afterwards.
func (m *Monitor) End(cause error) { m.end(cause) }

// Stop ends the monitor with cause, unless it ended already, and waits
// for its goroutines. It is idempotent.
func (m *Monitor) Stop(cause error) {
	m.end(cause)
	m.stop()
	m.wg.Wait()
}

func (m *Monitor) end(err error) {
	m.once.Do(func() {
		m.err.Store(&err)
		close(m.done)
		m.cancel()
		if m.onEnd != nil {
			m.onEnd(err)
		}
	})
}

func (m *Monitor) awaitSession() {
	select {
	case <-m.s.Done():
		m.end(m.s.Err())
	case <-m.ctx.Done():
	}
}

// watch follows the key until it is deleted. A failed watch (compaction,
// no leader, a broken stream) is not a loss: the key is read again and
// watched from there.
func (m *Monitor) watch(from int64) {
	bo := backoff.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	resyncs := 0
	for m.ctx.Err() == nil {
		if m.cli.Ctx().Err() != nil {
			return // nothing can be watched any more; the session ends at its deadline
		}
		next, err := m.follow(from, resyncs < maxResyncs)
		switch {
		case errors.Is(err, errResync):
			resyncs++
			from = next
		case errors.Is(err, errWatch):
			if backoff.Sleep(m.ctx, bo.Next()) != nil {
				return
			}
			resyncs = 0
			if next, err = m.read(); err == nil {
				from = next
			}
		}
		if errors.Is(err, ErrKeyDeleted) {
			if m.ctx.Err() == nil { // not ended already, by a release say
				m.lost()
			}
			return
		}
	}
}

// follow watches the key from revision from until it is deleted or the
// watch fails. If writes landed before the watch was created, it reads the
// key and asks, while insist holds, to watch again from a fresher revision.
func (m *Monitor) follow(from int64, insist bool) (int64, error) {
	w := watchDeletions(m.ctx, m.cli, from, m.key)
	defer w.close()
	for {
		select {
		case resp, ok := <-w.ch:
			deleted, err := w.take(resp, ok)
			switch {
			case err != nil:
				return 0, err
			case len(deleted) > 0:
				return 0, ErrKeyDeleted
			case !insist || !resp.Created || w.synced():
				continue
			}
			next, err := m.read()
			if err != nil {
				return 0, err
			}
			return next, errResync
		case <-m.ctx.Done():
			return 0, m.ctx.Err()
		}
	}
}

// read returns the revision after which the key is known to be still held,
// or ErrKeyDeleted. A failed read wraps errWatch so that it is retried.
func (m *Monitor) read() (int64, error) {
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(m.ctx), renewTimeout)
	defer cancel()
	resp, err := m.cli.Get(ctx, m.key)
	if err != nil {
		return 0, fmt.Errorf("%w: read %s: %w", errWatch, m.key, err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != m.rev {
		return 0, ErrKeyDeleted
	}
	return resp.Header.Revision + 1, nil
}

// lost ends the monitor at once, then renews the session so that, if the
// lease went with the key, the session and everything else riding on it
// learn so now rather than at the next renewal.
func (m *Monitor) lost() {
	m.end(ErrKeyDeleted)
	ctx, cancel := context.WithTimeout(m.bg, renewTimeout)
	defer cancel()
	_ = m.s.Renew(ctx)
}
