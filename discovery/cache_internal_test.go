package discovery

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestWatchIsSharedAndReleased(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	d := newDiscoverer(t, cli)
	c1 := watchT(t, d, "svc")
	c2 := watchT(t, d, "svc")
	c3 := watchT(t, d, "other")
	assert.Same(t, c1.w, c2.w, "one watch per service")
	assert.Equal(t, 2, d.watching())

	w := c1.w
	require.NoError(t, c1.Close())
	require.NoError(t, c1.Close()) // idempotent
	assert.Equal(t, 2, d.watching())
	assert.ErrorIs(t, c1.WaitSynced(context.Background()), ErrClosed)
	require.NoError(t, c2.WaitSynced(testContext(t)))

	require.NoError(t, c2.Close())
	assert.Equal(t, 1, d.watching())
	select {
	case <-w.f.Done():
	default:
		t.Fatal("watch still running after its last handle closed")
	}
	// A new handle starts a new watch.
	c4 := watchT(t, d, "svc")
	assert.NotSame(t, w, c4.w)
	require.NoError(t, c4.WaitSynced(testContext(t)))

	require.NoError(t, d.Close())
	assert.Equal(t, 0, d.watching())
	_, ok := <-c3.Changes(context.Background())
	assert.False(t, ok, "changes end with the discoverer")
	assert.ErrorIs(t, c3.WaitSynced(context.Background()), ErrClosed)
	_, err := d.Watch("svc")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = newDiscoverer(t, cli).Watch("bad/name")
	assert.ErrorIs(t, err, roster.ErrInvalidName)
}
