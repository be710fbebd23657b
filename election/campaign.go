package election

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// Campaign puts this candidate in the election with value and blocks until
// it leads, ctx is done or the Election is closed. The returned Leadership
// holds until it is resigned or lost; watch its Done.
//
// Campaign survives what it can: if its key is deleted or its session ends
// while it waits, it campaigns again on a live session. If it fails or ctx
// is cancelled, it withdraws its key, so a failed campaign leaves nothing
// behind to lead in its name.
//
// A hand-over costs about one round trip: the next candidate watches its
// predecessor's key with a watch the server registered in sync, so the
// deletion reaches it at once (etcd's Election.Campaign may wait up to
// 100 ms for the server's catch-up loop).
func (e *Election) Campaign(ctx context.Context, value string) (*Leadership, error) {
	if err := e.enter(); err != nil {
		return nil, err
	}
	ctx, cancel := e.bind(ctx)
	defer cancel()
	l, err := e.campaignLoop(ctx, value)
	return e.leave(l, closedErr(ctx, err))
}

func (e *Election) campaignLoop(ctx context.Context, value string) (*Leadership, error) {
	bo := backoff.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	for {
		l, err := e.campaign(ctx, value)
		if err == nil || ctx.Err() != nil || !retryable(err) {
			return l, err
		}
		if err := backoff.Sleep(ctx, bo.Next()); err != nil {
			return nil, err
		}
	}
}

// campaign makes one attempt on the current session.
func (e *Election) campaign(ctx context.Context, value string) (*Leadership, error) {
	s, err := e.mgr.Session(ctx)
	if err != nil {
		return nil, err
	}
	q := recipe.Queue{Client: e.cli, Prefix: e.prefix}
	en, err := q.Enqueue(ctx, s, value)
	if err != nil {
		return nil, err
	}
	if en.Reused && en.Value != value {
		// Our lease is queued already, from an earlier campaign whose
		// withdrawal failed: keep its place, with the new value.
		f := recipe.Fence{Client: e.cli, Key: en.Key, Rev: en.Rev, ErrNotHeld: ErrKeyDeleted}
		if _, err := f.Do(ctx, clientv3.OpPut(en.Key, value, clientv3.WithLease(s.Lease()))); err != nil {
			_ = q.Withdraw(en)
			return nil, err
		}
	}
	rev, err := q.Wait(ctx, s, en, recipe.Exclusive())
	if err != nil {
		return nil, err
	}
	return newLeadership(e, s, en, rev), nil
}

// retryable errors end one attempt but not the campaign: a fresh session or
// a fresh key fixes them.
func retryable(err error) bool {
	return errors.Is(err, ErrKeyDeleted) || errors.Is(err, session.ErrExpired) || errors.Is(err, session.ErrLeaseGone)
}

// enter claims the candidate for one campaign.
func (e *Election) enter() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		return ErrClosed
	case e.campaigning, e.cur != nil && e.cur.Err() == nil:
		return ErrBusy
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
