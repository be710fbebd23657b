package election

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// releaseTimeout bounds the resignations that Run and a closing Campaign
// make on their own account, when the caller's context is not theirs to
// use.
const releaseTimeout = 2 * time.Second

// Election is one candidate in the election of a name: it campaigns, leads,
// and observes who leads. It is safe for concurrent use, but campaigns for
// one candidate at a time (ErrBusy).
type Election struct {
	cli     *clientv3.Client
	name    string
	prefix  string
	opts    options
	in      *instruments
	mgr     *session.Manager
	ownMgr  bool
	unclaim func() // gives the name back to a shared manager
	sweep   *recipe.Sweeper

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // campaigns and observers in flight

	mu          sync.Mutex
	closed      bool
	campaigning bool
	cur         *Leadership

	closeOnce sync.Once
	closeErr  error
}

// New returns a candidate for the election called name, over cli. It
// contacts etcd only when asked to campaign or observe.
func New(cli *clientv3.Client, name string, opts ...Option) (*Election, error) {
	if cli == nil {
		return nil, fmt.Errorf("election: %w", roster.ErrNilClient)
	}
	if err := roster.ValidateName("election", name); err != nil {
		return nil, err
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	e := &Election{cli: cli, name: name, prefix: keys.ElectionPrefix(o.ns, name), opts: o, mgr: o.mgr,
		sweep: recipe.NewSweeper()}
	if e.mgr != nil {
		if e.unclaim, err = e.mgr.Claim(e.prefix); err != nil {
			return nil, fmt.Errorf("election %s: %w", name, err)
		}
	} else {
		mgr, err := session.NewManager(cli, session.WithTTL(o.ttl), session.WithLogger(o.logger),
			session.WithMeterProvider(o.meters))
		if err != nil {
			return nil, fmt.Errorf("election: %w", err)
		}
		e.mgr, e.ownMgr = mgr, true
	}
	e.in = newInstruments(o, name)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Name is the election's name.
func (e *Election) Name() string { return e.name }

// Prefix is the key prefix of the candidates, with its trailing '/'.
func (e *Election) Prefix() string { return e.prefix }

// Leader returns the current leader, or ErrNoLeader.
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	if e.cli.Ctx().Err() != nil {
		return Leader{}, fmt.Errorf("election %s: leader: %w", e.name, recipe.ErrClientClosed)
	}
	resp, err := e.cli.Get(orBackground(ctx), e.prefix, clientv3.WithFirstCreate()...)
	if err != nil {
		return Leader{}, fmt.Errorf("election %s: leader: %w", e.name, err)
	}
	if len(resp.Kvs) == 0 {
		return Leader{}, ErrNoLeader
	}
	return leaderOf(resp.Kvs[0], resp.Header.Revision), nil
}

// Close resigns the leadership this Election holds, if any, stops its
// campaigns and observers, and closes its own session Manager unless one
// was given. It waits at most about a TTL and is idempotent.
func (e *Election) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), e.mgr.TTL())
	defer cancel()
	return e.shutdown(ctx)
}

// Shutdown is Close bounded by ctx as well as by the TTL.
func (e *Election) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(orBackground(ctx), e.mgr.TTL())
	defer cancel()
	return e.shutdown(ctx)
}

func (e *Election) shutdown(ctx context.Context) error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		l := e.cur
		e.mu.Unlock()
		e.cancel()
		var errs []error
		if l != nil {
			if err := l.release(ctx, ErrClosed); !errors.Is(err, recipe.ErrClientClosed) {
				errs = append(errs, err) // with the client closed, the key expires with the lease
			}
		}
		e.wg.Wait()
		// A key left by a failed campaign goes with the lease when the
		// sessions are the Election's own; on a shared Manager it is swept
		// within ctx.
		if e.ownMgr {
			errs = append(errs, e.mgr.Shutdown(ctx))
			e.sweep.Close(ctx)
		} else {
			e.sweep.Close(ctx)
			e.unclaim()
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// start registers a campaign or observer, unless the Election is closed.
func (e *Election) start() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	return true
}

// bind returns ctx, also cancelled with ErrClosed as its cause when the
// Election closes.
func (e *Election) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(orBackground(ctx))
	stop := context.AfterFunc(e.ctx, func() { cancel(ErrClosed) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// closedErr turns a cancellation caused by Close into ErrClosed.
func closedErr(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), ErrClosed) {
		return ErrClosed
	}
	return err
}
