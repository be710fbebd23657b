package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// Campaign puts this candidate in the election with value and blocks until
// it leads, ctx ends or the Election is closed. It campaigns again, after a
// backoff (WithBackoff), when its key or session is lost while it waits or
// etcd cannot be reached, and leaves no key behind when it fails.
func (e *Election) Campaign(ctx context.Context, value string) (*Leadership, error) {
	if err := e.enter(); err != nil {
		return nil, err
	}
	ctx, cancel := e.bind(ctx)
	defer cancel()
	l, err := e.campaignLoop(ctx, value)
	l, err = e.leave(l, closedErr(ctx, err))
	if err != nil && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("election %s: campaign: %w", e.name, err)
	}
	return l, err
}

func (e *Election) campaignLoop(ctx context.Context, value string) (*Leadership, error) {
	began := time.Now()
	return recipe.Retry(ctx, e.cli, e.opts.backoff(), retryable, func(ctx context.Context) (*Leadership, error) {
		return e.campaign(ctx, value, began)
	})
}

// campaign makes one attempt on the current session.
func (e *Election) campaign(ctx context.Context, value string, began time.Time) (*Leadership, error) {
	s, err := e.mgr.Session(ctx)
	if err != nil {
		return nil, err
	}
	q := recipe.Queue{Client: e.cli, Prefix: e.prefix, Sweeper: e.sweep}
	en, err := q.Enqueue(ctx, s, value)
	if err != nil {
		return nil, err
	}
	if en.Reused && en.Value != value {
		// Our lease is queued already, from an earlier campaign whose
		// withdrawal failed: keep its place, with the new value.
		f := recipe.Fence{Client: e.cli, Key: en.Key, Rev: en.Rev, ErrNotHeld: ErrKeyDeleted}
		if _, err := f.Do(ctx, clientv3.OpPut(en.Key, value, clientv3.WithLease(s.Lease()))); err != nil {
			_ = q.Withdraw(s, en)
			return nil, err
		}
	}
	rev, err := q.Wait(ctx, s, en, recipe.Exclusive())
	if err != nil {
		return nil, err
	}
	return newLeadership(e, s, en, rev, began), nil
}

// retryable errors end one attempt but not the campaign: a fresh session, a
// fresh key or a new connection fixes them.
func retryable(err error) bool {
	return errors.Is(err, ErrKeyDeleted) || errors.Is(err, session.ErrExpired) || errors.Is(err, session.ErrLeaseGone) ||
		recipe.Transient(err)
}

// enter claims the candidate for one campaign.
func (e *Election) enter() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		return ErrClosed
	case e.campaigning, e.cur != nil && e.cur.Err() == nil:
		return fmt.Errorf("election %s: %w", e.name, ErrBusy)
	}
	e.campaigning = true
	e.wg.Add(1)
	return nil
}

// leave ends a campaign. A leadership won while the Election was closing is
// given back at once.
func (e *Election) leave(l *Leadership, err error) (*Leadership, error) {
	defer e.wg.Done()
	e.mu.Lock()
	e.campaigning = false
	closed := e.closed
	if l != nil && !closed {
		e.cur = l
	}
	e.mu.Unlock()
	if l != nil && closed {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		_ = l.release(ctx, ErrClosed)
		return nil, ErrClosed
	}
	return l, err
}
