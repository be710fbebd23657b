package election

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/recipe"
)

// A RunOption configures Run.
type RunOption func(*runOptions)

type runOptions struct {
	started   func(*Leadership)
	stopped   func(error)
	newLeader func(Leader)
}

// OnStartedLeading is called with each leadership won, before work starts.
func OnStartedLeading(f func(l *Leadership)) RunOption {
	return func(o *runOptions) { o.started = f }
}

// OnStoppedLeading is called after each leadership ends and is released,
// with why it ended (see Leadership.Err).
func OnStoppedLeading(f func(err error)) RunOption {
	return func(o *runOptions) { o.stopped = f }
}

// OnNewLeader is called, from a goroutine of its own, with every state of
// the election as Observe delivers it, whoever leads.
func OnNewLeader(f func(Leader)) RunOption {
	return func(o *runOptions) { o.newLeader = f }
}

// Run keeps this candidate in the election until ctx ends: it campaigns,
// runs work while leading, resigns when work returns, and campaigns again.
// work's context is cancelled the moment leadership is lost. If work fails
// while still leading, Run resigns and returns its error; otherwise it
// returns ctx's error once ctx ends, or ErrClosed. Failed campaigns are
// retried with backoff (WithBackoff).
func (e *Election) Run(ctx context.Context, value string, work func(ctx context.Context, l *Leadership) error, opts ...RunOption) error {
	if work == nil {
		return fmt.Errorf("election %s: Run: %w: nil work", e.name, roster.ErrInvalidOption)
	}
	ctx = orBackground(ctx)
	var o runOptions
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.newLeader != nil {
		octx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		states := e.Observe(octx)
		wg.Go(func() {
			for s := range states {
				o.newLeader(s)
			}
		})
	}
	bo := e.opts.backoff()
	for {
		l, err := e.Campaign(ctx, value)
		switch {
		case err == nil:
			bo.Reset()
			if err := e.lead(ctx, l, work, &o); err != nil {
				return err
			}
		case errors.Is(err, ErrClosed), errors.Is(err, ErrBusy), errors.Is(err, recipe.ErrClientClosed):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			if err := backoff.Sleep(ctx, bo.Next()); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// lead runs work for one leadership and releases it.
func (e *Election) lead(ctx context.Context, l *Leadership, work func(context.Context, *Leadership) error, o *runOptions) error {
	if o.started != nil {
		o.started(l)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-l.Done():
			cancel(l.Err())
		case <-wctx.Done():
		}
	})
	werr := work(wctx, l)
	cancel(nil)
	wg.Wait()
	lost := l.Err() != nil

	rctx, rcancel := context.WithTimeout(context.Background(), releaseTimeout)
	_ = l.Resign(rctx) // a lost leadership's key goes with its session
	rcancel()
	if o.stopped != nil {
		o.stopped(l.Err())
	}
	if werr != nil && !lost && ctx.Err() == nil {
		return werr
	}
	return nil
}
