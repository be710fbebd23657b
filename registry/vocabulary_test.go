package registry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// Issue 12: every call to Events gets every event; none is split between
// readers; a reader that does not read loses the oldest, never the newest;
// the channel ends with its context.
func TestEventsEachReaderGetsEveryEvent(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	r := newRegistrar(t, m.Client())
	a, b := r.Events(ctx), r.Events(ctx)
	slowCtx, stopSlow := context.WithCancel(ctx)
	slow := r.Events(slowCtx)

	const n = 100 // more than a reader's buffer of events
	read := func(ch <-chan registry.Event) <-chan []string {
		out := make(chan []string, 1)
		go func() {
			var ids []string
			for len(ids) < n {
				select {
				case ev := <-ch:
					if ev.Kind == registry.EventRegistered {
						ids = append(ids, ev.ID)
					}
				case <-time.After(5 * time.Second):
					out <- ids
					return
				}
			}
			out <- ids
		}()
		return out
	}
	gotA, gotB := read(a), read(b)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("i%03d", i))
		require.NoError(t, r.Register(ctx, instance("users", want[i])))
	}
	assert.Equal(t, want, <-gotA, "reader a gets each event, in order")
	assert.Equal(t, want, <-gotB, "reader b gets each event too")
	var got []string
	for len(got) == 0 || got[len(got)-1] != fmt.Sprintf("i%03d", n-1) {
		select {
		case ev := <-slow:
			got = append(got, ev.ID)
		case <-time.After(5 * time.Second):
			t.Fatalf("the slow reader never got the newest event; got %v", got)
		}
	}
	assert.Less(t, len(got), n, "the slow reader lost the oldest")
	t.Logf("a reader that read nothing while %d events were published got the last %d", n, len(got))

	stopSlow()
	for range slow { // ends with its context
	}
	select {
	case ev := <-a:
		t.Fatalf("unexpected event %v", ev)
	default:
	}
}

// Issue 12: errors wrap the shared sentinels.
func TestErrorsWrapRosterSentinels(t *testing.T) {
	ctx := testCtx(t)
	assert.ErrorIs(t, registry.ErrClosed, roster.ErrClosed)
	assert.ErrorIs(t, registry.ErrKeyDeleted, roster.ErrLost)
	_, err := registry.New(nil)
	assert.ErrorIs(t, err, roster.ErrNilClient)
	assert.Contains(t, err.Error(), "registry:")

	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client())
	require.NoError(t, r.Register(ctx, instance("users", "a")))
	lease := r.Status().Lease
	_, err = plain.Revoke(ctx, lease)
	require.NoError(t, err)
	lost := waitEvent(t, r, registry.EventLost, 5*time.Second)
	assert.ErrorIs(t, lost.Err, roster.ErrLost)
	t.Logf("lost: %v", lost.Err)
	waitEvent(t, r, registry.EventRestored, 5*time.Second)

	_, err = plain.Delete(ctx, key("users", "a"))
	require.NoError(t, err)
	lost = waitEvent(t, r, registry.EventLost, 5*time.Second)
	assert.ErrorIs(t, lost.Err, registry.ErrKeyDeleted)
	assert.ErrorIs(t, lost.Err, roster.ErrLost)
	assert.Contains(t, lost.Err.Error(), key("users", "a"))

	require.NoError(t, r.Close())
	err = r.Register(ctx, instance("users", "b"))
	assert.ErrorIs(t, err, registry.ErrClosed)
	assert.ErrorIs(t, err, roster.ErrClosed)
	assert.False(t, errors.Is(err, roster.ErrLost), "a voluntary end is no loss")
}
