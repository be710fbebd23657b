package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/session"
)

// closeTimeout bounds each release Close makes, so that Close returns
// while etcd is unreachable; the keys then go with their sessions.
const closeTimeout = 2 * time.Second

// base is what Mutex, Semaphore and RWMutex share: the client, where
// sessions come from, the holds still live, and the lifetime.
type base struct {
	cli      *clientv3.Client
	name     string
	sessions *session.Manager
	own      bool // sessions is ours to close

	closing context.Context // cancelled by Close
	close   context.CancelFunc

	mu       sync.Mutex
	closed   bool
	holds    map[*Hold]struct{}
	inflight sync.WaitGroup // acquisitions under way
	wg       sync.WaitGroup // goroutines of holds

	closeOnce sync.Once
	closeErr  error
}

func newBase(cli *clientv3.Client, kind, name string, opts []Option) (*base, config, error) {
	if cli == nil {
		return nil, config{}, fmt.Errorf("%w: nil client", ErrInvalidOption)
	}
	if err := roster.ValidateName(kind+" name", name); err != nil {
		return nil, config{}, err
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, config{}, err
	}
	b := &base{cli: cli, name: name, sessions: cfg.sessions, holds: make(map[*Hold]struct{})}
	if b.sessions == nil {
		if b.sessions, err = session.NewManager(cli, session.WithTTL(cfg.ttl)); err != nil {
			return nil, config{}, err
		}
		b.own = true
	}
	b.closing, b.close = context.WithCancel(context.Background())
	return b, cfg, nil
}

// begin starts an acquisition: it returns ctx, also cancelled (with cause
// ErrClosed) when Close is called, and the function that ends the
// acquisition. It fails once Close has been called.
func (b *base) begin(ctx context.Context) (context.Context, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, ErrClosed
	}
	b.inflight.Add(1)
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(b.closing, func() { cancel(ErrClosed) })
	return ctx, func() {
		stop()
		cancel(nil)
		b.inflight.Done()
	}, nil
}

// acquire runs one acquisition, get, under begin; it registers the Hold
// get returns and names the lock in errors.
func (b *base) acquire(ctx context.Context, kind string, get func(context.Context) (*Hold, error)) (*Hold, error) {
	ctx, end, err := b.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, b.name, err)
	}
	defer end()
	h, err := get(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, b.name, explain(ctx, err))
	}
	if !b.track(h) {
		rctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		h.release(rctx, ErrClosed)
		return nil, fmt.Errorf("%s %s: %w", kind, b.name, ErrClosed)
	}
	return h, nil
}

// session returns the session to acquire on.
func (b *base) session(ctx context.Context) (*session.Session, error) {
	s, err := b.sessions.Session(ctx)
	if errors.Is(err, session.ErrClosed) && !b.own {
		return nil, fmt.Errorf("lock %s: shared session manager: %w", b.name, err)
	}
	return s, err
}

// explain turns the cancellation Close causes into ErrClosed.
func explain(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), ErrClosed) && errors.Is(err, context.Canceled) {
		return ErrClosed
	}
	return err
}

// track registers a new hold, so that Close releases it, and starts the
// goroutine that clears up after a hold lost without Release. It returns
// false, and the caller must release h, if Close has begun.
func (b *base) track(h *Hold) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.holds[h] = struct{}{}
	b.wg.Go(func() {
		<-h.Done()
		if !h.releasing.Load() {
			h.finish()
		}
	})
	return true
}

func (b *base) untrack(h *Hold) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.holds, h)
}

// shut cancels acquisitions under way, waits for them, releases every live
// hold and, if the sessions are the lock's own, revokes the lease. It is
// idempotent and waits for every goroutine the lock started.
func (b *base) shut() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.close()
		b.inflight.Wait()

		b.mu.Lock()
		live := make([]*Hold, 0, len(b.holds))
		for h := range b.holds {
			live = append(live, h)
		}
		b.mu.Unlock()
		var errs []error
		for _, h := range live {
			ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			errs = append(errs, h.release(ctx, ErrClosed))
			cancel()
		}
		b.wg.Wait()
		if b.own {
			errs = append(errs, b.sessions.Close())
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}
