package recipe_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

func TestExclusiveWaitsForEveryKeyBefore(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	a, b, c := join(t, m.Client(), ""), join(t, m.Client(), ""), join(t, m.Client(), "")
	ex := recipe.Exclusive()
	requireTurn(t, a, ex)
	requireWaiting(t, b, ex)
	requireWaiting(t, c, ex)

	bctx, cancelB := context.WithCancel(ctx)
	bres := waitAsync(t, bctx, b, ex)
	cres := waitAsync(t, ctx, c, ex)

	// c watches b, its predecessor; b gives up. c must then wait for a.
	cancelB()
	require.ErrorIs(t, receive(t, bres, 5*time.Second).err, context.Canceled)
	require.False(t, keyExists(t, m.Client(), b.e.Key), "cancelled wait withdrew its key")
	requireWaiting(t, c, ex)

	deleted := release(t, a)
	r := receive(t, cres, 5*time.Second)
	require.NoError(t, r.err)
	require.GreaterOrEqual(t, r.rev, deleted, "turn read at a revision where a was gone")
	require.True(t, keyExists(t, m.Client(), c.e.Key))
}

func TestSharedAdmitsN(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	sem := recipe.Shared(2)
	a, b, c, d := join(t, m.Client(), ""), join(t, m.Client(), ""), join(t, m.Client(), ""), join(t, m.Client(), "")
	requireTurn(t, a, sem)
	requireTurn(t, b, sem)
	requireWaiting(t, c, sem)
	requireWaiting(t, d, sem)

	cres, dres := waitAsync(t, ctx, c, sem), waitAsync(t, ctx, d, sem)
	deleted := release(t, a) // oldest holder leaves: c is admitted, d is not
	r := receive(t, cres, 5*time.Second)
	require.NoError(t, r.err)
	require.GreaterOrEqual(t, r.rev, deleted)
	requireWaiting(t, d, sem)

	deleted = release(t, c) // the newest holder leaves: d sees the count drop
	r = receive(t, dres, 5*time.Second)
	require.NoError(t, r.err)
	require.GreaterOrEqual(t, r.rev, deleted)
}

// readersWriters is a custom rule over values: a writer waits for every
// key before it, a reader only for writers.
func readersWriters(value string) recipe.Rule {
	if value == "w" {
		return recipe.Exclusive()
	}
	return recipe.Rule{Blockers: func(before []*mvccpb.KeyValue) []*mvccpb.KeyValue {
		for i := len(before) - 1; i >= 0; i-- {
			if string(before[i].Value) == "w" {
				return before[i : i+1]
			}
		}
		return nil
	}}
}

func TestCustomRuleSeesValues(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	r1, w1, r2 := join(t, m.Client(), "r"), join(t, m.Client(), "w"), join(t, m.Client(), "r")
	requireTurn(t, r1, readersWriters("r"))
	requireWaiting(t, w1, readersWriters("w"))
	requireWaiting(t, r2, readersWriters("r"))

	wres, rres := waitAsync(t, ctx, w1, readersWriters("w")), waitAsync(t, ctx, r2, readersWriters("r"))
	release(t, r1)
	require.NoError(t, receive(t, wres, 5*time.Second).err)
	requireWaiting(t, r2, readersWriters("r"))
	deleted := release(t, w1)
	r := receive(t, rres, 5*time.Second)
	require.NoError(t, r.err)
	require.GreaterOrEqual(t, r.rev, deleted)
}

// A blocker deleted after the read but before the watches exist must not
// be missed: the rule deletes it while the read is being evaluated.
func TestDeleteBetweenReadAndWatchIsSeen(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	a, b := join(t, m.Client(), ""), join(t, m.Client(), "")
	first := true
	rule := recipe.Rule{Last: 1, Blockers: func(before []*mvccpb.KeyValue) []*mvccpb.KeyValue {
		if first && len(before) > 0 {
			first = false
			release(t, a)
		}
		return before
	}}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := b.q.Wait(rctx, b.s, b.e, rule)
	require.NoError(t, err)
	require.False(t, first, "the rule ran the delete")
}

func TestOwnKeyDeletedEndsWait(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	a, b := join(t, m.Client(), ""), join(t, m.Client(), "")
	_ = a
	res := waitAsync(t, ctx, b, recipe.Exclusive())
	release(t, b)
	r := receive(t, res, 5*time.Second)
	require.ErrorIs(t, r.err, recipe.ErrKeyDeleted)
	require.NoError(t, b.s.Err(), "the lease is still there; only the key went")
}

// etcd #11051: a waiter whose lease vanished must not report its turn when
// its predecessor leaves right after.
func TestRevokedWaiterNeverGetsTurn(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	other := m.Client()
	a := join(t, m.Client(), "")
	b := join(t, m.Client(), "", session.WithTTL(30*time.Second))
	res := waitAsync(t, ctx, b, recipe.Exclusive())
	_, err := other.Revoke(ctx, b.s.Lease())
	require.NoError(t, err)
	release(t, a)
	r := receive(t, res, 5*time.Second)
	require.ErrorIs(t, r.err, recipe.ErrKeyDeleted)
	require.ErrorIs(t, r.err, session.ErrLeaseGone, "a renewal told why at once")
	require.ErrorIs(t, b.s.Err(), session.ErrLeaseGone)
}

func TestSessionExpiryEndsWaitAndKeyIsWithdrawnLater(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	a := join(t, m.Client(), "")
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	b := join(t, etcdtest.NewClient(t, proxy.Endpoint()), "", session.WithTTL(2*time.Second))
	requireWaiting(t, b, recipe.Exclusive())
	res := waitAsync(t, ctx, b, recipe.Exclusive())

	proxy.Pause()
	r := receive(t, res, 10*time.Second)
	require.ErrorIs(t, r.err, session.ErrExpired)
	proxy.Restore()
	// The server expires the lease on its own; a is untouched.
	require.Eventually(t, func() bool { return !keyExists(t, m.Client(), b.e.Key) }, 10*time.Second, 20*time.Millisecond)
	require.True(t, keyExists(t, m.Client(), a.e.Key))
}

func TestWaitReturnsAtOnceWhenNothingBlocks(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	a := join(t, m.Client(), "")
	rev, err := a.q.Wait(ctx, a.s, a.e, recipe.Exclusive())
	require.NoError(t, err)
	require.GreaterOrEqual(t, rev, a.e.Rev)
}

func TestCancelledWaitWithdrawsEvenAfterCtxDone(t *testing.T) {
	m := etcdtest.Start(t)
	join(t, m.Client(), "")
	b := join(t, m.Client(), "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.q.Wait(ctx, b.s, b.e, recipe.Exclusive())
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
	require.False(t, keyExists(t, m.Client(), b.e.Key))
}
