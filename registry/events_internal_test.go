package registry

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A reader that does not keep up loses the oldest events, never the newest,
// and the writer never waits.
func TestEventsDropOldestWhenFull(t *testing.T) {
	q := newEvents()
	const n = 3 * eventBuffer
	for i := range n {
		q.emit(Event{Kind: EventError, ID: string(rune('A' + i%26)), Lease: 1 + leaseOf(i)})
	}
	require.Len(t, q.ch, eventBuffer)
	first := <-q.ch
	assert.Equal(t, leaseOf(n-eventBuffer)+1, first.Lease, "the oldest kept is the one after the dropped")
	var last Event
	for range eventBuffer - 1 {
		last = <-q.ch
	}
	assert.Equal(t, leaseOf(n-1)+1, last.Lease, "the newest is kept")
	assert.False(t, last.Time.IsZero())

	q.close()
	q.close()
	q.emit(Event{Kind: EventLost}) // after close: dropped, no panic
	_, ok := <-q.ch
	assert.False(t, ok, "closed")
}

func TestEventString(t *testing.T) {
	ev := Event{Kind: EventLost, Service: "users", ID: "a", Lease: 0x2a, Err: ErrClosed}
	assert.Equal(t, "lost users/a lease 2a: registry: registrar closed", ev.String())
	assert.Equal(t, "restored", Event{Kind: EventRestored}.String())
	assert.Equal(t, "EventKind(9)", EventKind(9).String())
}

// leaseOf converts a test counter to a lease ID.
func leaseOf(i int) clientv3.LeaseID { return clientv3.LeaseID(i) }
