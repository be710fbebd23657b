package registry

import (
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EventKind says what happened to a registrar or to one of its instances.
type EventKind int

// Event kinds.
const (
	// EventRegistered: Register wrote an instance that was not registered
	// before.
	EventRegistered EventKind = iota + 1
	// EventLost: the lease is presumed lost (Service and ID are empty) or one
	// instance's key was deleted by someone else (Service and ID are set).
	// Discovery may no longer list the affected instances.
	EventLost
	// EventRestored: after EventLost, every instance is back under a live
	// lease (Service and ID empty), except any whose key another owner holds
	// (each reported by an EventError, and written back when freed); or the
	// one deleted key was written again.
	EventRestored
	// EventError: an attempt to restore failed and will be retried (etcd
	// unreachable, say), or another owner holds an instance's key (Err
	// wraps ErrDuplicate; the registrar waits for the key to be freed).
	EventError
)

var kindNames = [...]string{EventRegistered: "registered", EventLost: "lost", EventRestored: "restored", EventError: "error"}

func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one change in a registrar's state, for logs and metrics. The
// current state is always available from Registrar.Status.
type Event struct {
	Kind    EventKind
	Service string           // the instance's service, for per-instance events
	ID      string           // the instance's ID, for per-instance events
	Lease   clientv3.LeaseID // the lease concerned: lost, or new after a restore
	Err     error            // why, for EventLost and EventError
	Time    time.Time
}

func (e Event) String() string {
	s := e.Kind.String()
	if e.Service != "" {
		s += " " + e.Service + "/" + e.ID
	}
	if e.Lease != 0 {
		s += fmt.Sprintf(" lease %x", int64(e.Lease))
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// eventBuffer is how many events wait for a slow reader before the oldest
// are dropped.
const eventBuffer = 64

// events delivers Events without ever blocking the registrar: when the
// reader falls eventBuffer behind, the oldest event is dropped, so what a
// slow reader sees last is always the newest state.
type events struct {
	mu     sync.Mutex
	ch     chan Event
	closed bool
}

func newEvents() *events { return &events{ch: make(chan Event, eventBuffer)} }

func (q *events) emit(e Event) {
	e.Time = time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	for {
		select {
		case q.ch <- e:
			return
		default:
		}
		select { // full: make room; senders are serialized by mu
		case <-q.ch:
		default:
		}
	}
}

func (q *events) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}
