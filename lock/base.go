package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// releaseTimeout bounds a release made on the lock's own account (an
// acquisition that completed as Close began), when no caller's context
// applies.
const releaseTimeout = 2 * time.Second

// base is what Mutex, Semaphore and RWMutex share: the client, where
// sessions come from, the holds still live, and the lifetime.
type base struct {
	cli      *clientv3.Client
	kind     string
	name     string
	sessions *session.Manager
	own      bool   // sessions is ours to close
	unclaim  func() // gives the name back to a shared manager
	sweep    *recipe.Sweeper
	in       *instruments

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

// newBase checks the arguments of a lock of kind ("lock", "semaphore",
// "rwlock") called name whose keys live under prefix(namespace).
func newBase(cli *clientv3.Client, kind, name string, opts []Option, prefix func(ns string) string) (*base, string, error) {
	if cli == nil {
		return nil, "", fmt.Errorf("%s: %w", kind, roster.ErrNilClient)
	}
	if err := roster.ValidateName(kind+" name", name); err != nil {
		return nil, "", err
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, "", err
	}
	pfx := prefix(cfg.namespace)
	b := &base{cli: cli, kind: kind, name: name, sessions: cfg.sessions, holds: make(map[*Hold]struct{}),
		in: newInstruments(cfg, kind, name), sweep: recipe.NewSweeper()}
	if b.sessions != nil {
		// One lease, one key per mutex: two handles of one name on a
		// shared manager would share it (etcd #11360). Semaphores and RW
		// locks follow the same rule, so that there is one rule.
		if b.unclaim, err = b.sessions.Claim(pfx); err != nil {
			return nil, "", fmt.Errorf("%s %s: %w", kind, name, err)
		}
	} else {
		b.sessions, err = session.NewManager(cli, session.WithTTL(cfg.ttl), session.WithLogger(cfg.logger),
			session.WithMeterProvider(cfg.meters))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", kind, err)
		}
		b.own = true
	}
	b.closing, b.close = context.WithCancel(context.Background())
	return b, pfx, nil
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
	ctx, cancel := context.WithCancelCause(orBackground(ctx))
	stop := context.AfterFunc(b.closing, func() { cancel(ErrClosed) })
	return ctx, func() {
		stop()
		cancel(nil)
		b.inflight.Done()
	}, nil
}

// acquire runs one acquisition, get, under begin; it registers the Hold
// get returns and names the lock in errors.
func (b *base) acquire(ctx context.Context, try bool, get func(context.Context) (*Hold, error)) (*Hold, error) {
	start := time.Now()
	ctx, end, err := b.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", b.kind, b.name, err)
	}
	defer end()
	// A request that a broken connection failed ends one attempt, not an
	// acquisition that waits: the next attempt reconnects. ctx, Close and
	// the session ending still end it; a try fails at once.
	retry := func(err error) bool { return !try && recipe.Transient(err) }
	h, err := recipe.Retry(ctx, b.cli, backoff.Backoff{}, retry, get)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", b.kind, b.name, explain(ctx, err))
	}
	if !b.track(h) {
		rctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		h.release(rctx, ErrClosed)
		return nil, fmt.Errorf("%s %s: %w", b.kind, b.name, ErrClosed)
	}
	b.in.held(time.Since(start))
	return h, nil
}

// session returns the session to acquire on.
func (b *base) session(ctx context.Context) (*session.Session, error) {
	s, err := b.sessions.Session(ctx)
	if errors.Is(err, session.ErrClosed) && !b.own {
		return nil, fmt.Errorf("shared session manager: %w", err)
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

// closeNow is Close: bounded by the TTL.
func (b *base) closeNow() error {
	ctx, cancel := context.WithTimeout(context.Background(), b.sessions.TTL())
	defer cancel()
	return b.shut(ctx)
}

// shutdown is Shutdown: bounded by ctx and the TTL.
func (b *base) shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(orBackground(ctx), b.sessions.TTL())
	defer cancel()
	return b.shut(ctx)
}

// shut cancels acquisitions under way, waits for them, releases every live
// hold within ctx and, if the sessions are the lock's own, revokes the
// lease. It is idempotent and waits for every goroutine the lock started.
func (b *base) shut(ctx context.Context) error {
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
		errs := make([]error, len(live))
		var wg sync.WaitGroup
		for i, h := range live {
			wg.Go(func() {
				if err := h.release(ctx, ErrClosed); !errors.Is(err, recipe.ErrClientClosed) {
					errs[i] = err // with the client closed, the key expires with the lease
				}
			})
		}
		wg.Wait()
		b.wg.Wait()
		// A key left by a failed acquisition goes with the lease when the
		// sessions are the lock's own; on a shared Manager it is swept
		// within ctx.
		if b.own {
			errs = append(errs, b.sessions.Shutdown(ctx))
			b.sweep.Close(ctx)
		} else {
			b.sweep.Close(ctx)
			b.unclaim()
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// orBackground makes a nil ctx harmless.
func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}
