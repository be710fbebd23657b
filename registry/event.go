package registry

import (
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EventKind says what happened to a registrar or to one of its instances.
type EventKind int

// Event kinds.
const (
	// EventRegistered: Register wrote an instance that was not registered.
	EventRegistered EventKind = iota + 1
	// EventLost: the lease is presumed lost (Service and ID empty), or
	// someone else deleted one instance's key. Err wraps roster.ErrLost.
	EventLost
	// EventRestored: after EventLost, every instance is back under a live
	// lease (Service and ID empty), or the one deleted key is written again.
	EventRestored
	// EventError: an attempt failed and will be retried, or another owner
	// holds an instance's key (Err wraps ErrDuplicate).
	EventError
	// EventDrainRequested: an operator asked for the instance to be drained
	// (see RequestDrain); it is now written draining. Reason is theirs.
	EventDrainRequested
	// EventUndrainRequested: the operator's request was cancelled; the
	// instance has the status the application gave it again.
	EventUndrainRequested
)

var kindNames = [...]string{
	EventRegistered:       "registered",
	EventLost:             "lost",
	EventRestored:         "restored",
	EventError:            "error",
	EventDrainRequested:   "drain requested",
	EventUndrainRequested: "undrain requested",
}

func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one change of a registrar's state. Status has the current state.
type Event struct {
	Kind    EventKind
	Service string           // set for events about one instance
	ID      string           // set for events about one instance
	Lease   clientv3.LeaseID // the lease lost, or the new one after a restore
	Err     error            // why, for EventLost and EventError
	Reason  string           // the operator's, for EventDrainRequested
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
	if e.Reason != "" {
		s += fmt.Sprintf(" (%s)", e.Reason)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// eventBuffer is how many events wait for a slow reader before the oldest
// are dropped.
const eventBuffer = 64
