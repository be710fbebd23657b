package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
)

// Manager shares one live Session among many users, such as the elections
// and locks of one process, so that they all ride on a single lease, and
// grants a new Session once the current one has ended.
type Manager struct {
	cli  *clientv3.Client
	opts []Option
	ttl  time.Duration

	ctx    context.Context // cancelled by Close: ends grants in flight
	cancel context.CancelFunc
	turn   chan struct{} // one grant at a time; a channel, so waiting heeds ctx

	mu     sync.Mutex
	cur    *Session
	ended  []*Session // replaced sessions, closed by Close unless done already
	closed bool
	names  map[string]struct{}

	closeOnce sync.Once
	closeErr  error
}

// NewManager returns a Manager whose sessions are created with opts. It
// grants nothing until the first call to Session.
func NewManager(cli *clientv3.Client, opts ...Option) (*Manager, error) {
	if cli == nil {
		return nil, fmt.Errorf("session: %w", roster.ErrNilClient)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	inst := newInstruments(o)
	m := &Manager{
		cli:   cli,
		opts:  append(append([]Option(nil), opts...), func(o *options) { o.inst = inst }),
		ttl:   o.ttl,
		turn:  make(chan struct{}, 1),
		names: make(map[string]struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// TTL is the TTL of the Manager's sessions.
func (m *Manager) TTL() time.Duration { return m.ttl }

// Session returns the current live session, granting a new lease if there
// is none or the last one has ended.
func (m *Manager) Session(ctx context.Context) (*Session, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if s, err := m.live(); s != nil || err != nil {
		return s, err
	}
	select {
	case m.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("session: waiting for a grant under way: %w", context.Cause(ctx))
	case <-m.ctx.Done():
		return nil, ErrClosed
	}
	defer func() { <-m.turn }()
	if s, err := m.live(); s != nil || err != nil {
		return s, err // granted by the call we waited for
	}
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(m.ctx, func() { cancel(ErrClosed) })
	defer stop()
	s, err := New(gctx, m.cli, m.opts...)
	if err != nil {
		if errors.Is(context.Cause(gctx), ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		if m.cur != nil {
			m.ended = append(m.ended, m.cur)
		}
		m.cur = s
	}
	m.mu.Unlock()
	if closed {
		_ = s.Close() // granted as Close began: nobody else knows of it
		return nil, ErrClosed
	}
	return s, nil
}

// live returns the current session if it is live, or ErrClosed. An ended
// one stays in m.ended, still revoking its lease if it was presumed lost,
// until Close.
func (m *Manager) live() (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.ended = pruneFinished(m.ended)
	if m.cur != nil && m.cur.Err() == nil {
		return m.cur, nil
	}
	return nil, nil
}

// Claim reserves name, such as an election's or a lock's key prefix, for
// one user of the Manager until release is called: a lease has one key per
// name, so two users of one name would share it. A name claimed already
// gives an error wrapping ErrNameInUse.
func (m *Manager) Claim(name string) (release func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, taken := m.names[name]; taken {
		return nil, fmt.Errorf("%w: %q", ErrNameInUse, name)
	}
	m.names[name] = struct{}{}
	return sync.OnceFunc(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.names, name)
	}), nil
}

// Close closes the sessions, revoking their leases, and refuses further
// calls to Session. It waits at most about a TTL and is idempotent.
func (m *Manager) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), m.ttl)
	defer cancel()
	return m.Shutdown(ctx)
}

// Shutdown is Close bounded by ctx as well as by the TTL.
func (m *Manager) Shutdown(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		all := append(m.ended, m.cur)
		m.cur, m.ended = nil, nil
		m.mu.Unlock()
		m.cancel()
		m.turn <- struct{}{} // waits for a grant under way, cut short by cancel
		var wg sync.WaitGroup
		errs := make([]error, len(all))
		for i, s := range all {
			if s != nil {
				wg.Go(func() { errs[i] = s.Shutdown(ctx) })
			}
		}
		wg.Wait()
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// pruneFinished drops the sessions whose goroutines have all returned: a
// Close would have nothing left to wait for or revoke.
func pruneFinished(ss []*Session) []*Session {
	out := ss[:0]
	for _, s := range ss {
		if !s.finished() {
			out = append(out, s)
		}
	}
	clear(ss[len(out):])
	return out
}
