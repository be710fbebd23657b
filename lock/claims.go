package lock

import (
	"context"
	"sync"
)

// claims serializes, within this process, the users of one mutex key.
//
// etcd's mutex layout gives every lease exactly one key per lock,
// prefix + lease ID, so two handles on one session (a shared
// session.Manager, or one Mutex used from many goroutines) would put the
// same key and both believe they hold the lock (etcd #11360). A key must
// therefore be claimed here before it is put in etcd, and is given up when
// its holder releases or loses it. The table is package-wide because the
// key, which names the lease, is the identity of the conflict: any two
// Mutexes built over one lease and one name clash, whoever built them.
var claims = claimTable{keys: make(map[string]*claim)}

type claimTable struct {
	mu   sync.Mutex
	keys map[string]*claim
}

// claim is one key's turn: a token in a one-slot channel. Go queues the
// goroutines blocked on a channel in order, so local waiters take turns
// first come, first served, and a release wakes one of them, not all.
type claim struct {
	turn chan struct{}
	refs int // holder and waiters; the entry goes when none is left
}

// claim waits for key's turn and returns the function that gives it up.
// With try, it does not wait: ok is false if the key is taken.
func (t *claimTable) claim(ctx context.Context, key string, try bool) (release func(), ok bool, err error) {
	c := t.ref(key)
	if try {
		select {
		case c.turn <- struct{}{}:
		default:
			t.unref(key, c)
			return nil, false, nil
		}
	} else {
		select {
		case c.turn <- struct{}{}:
		case <-ctx.Done():
			t.unref(key, c)
			return nil, false, context.Cause(ctx)
		}
	}
	return sync.OnceFunc(func() {
		<-c.turn
		t.unref(key, c)
	}), true, nil
}

func (t *claimTable) ref(key string) *claim {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.keys[key]
	if c == nil {
		c = &claim{turn: make(chan struct{}, 1)}
		t.keys[key] = c
	}
	c.refs++
	return c
}

func (t *claimTable) unref(key string, c *claim) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.refs--; c.refs == 0 {
		delete(t.keys, key)
	}
}
