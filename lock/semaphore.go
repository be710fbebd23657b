package lock

import (
	"context"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/recipe"
)

// Semaphore is a distributed counting semaphore: at most Limit holders at
// once, admitted in first-come order. A holder that dies frees its permit
// when its lease expires.
//
// Every key records the limit its holder assumed. Acquire refuses
// (ErrLimitMismatch) to join a queue whose oldest key says otherwise, and
// an acquirer is admitted only when every key ahead of it records its own
// limit: all holders then agree, so none counts with a larger limit than
// the others. A new limit takes effect once every holder and waiter of the
// old one has gone.
//
// A Semaphore is safe for concurrent use, and one session may hold several
// permits: each acquisition has a key of its own.
type Semaphore struct {
	b      *base
	queue  recipe.Queue
	limit  int64
	value  string
	admits recipe.Rule
}

// NewSemaphore returns the semaphore name (a valid roster name) of limit
// permits over cli. It grants no lease until the first Acquire.
func NewSemaphore(cli *clientv3.Client, name string, limit int, opts ...Option) (*Semaphore, error) {
	if limit < 1 {
		return nil, fmt.Errorf("%w: %d, must be at least 1", ErrInvalidLimit, limit)
	}
	b, prefix, err := newBase(cli, "semaphore", name, opts, func(ns string) string { return semaphorePrefix(ns, name) })
	if err != nil {
		return nil, err
	}
	return &Semaphore{
		b:      b,
		queue:  recipe.Queue{Client: cli, Prefix: prefix, Sweeper: b.sweep},
		limit:  int64(limit),
		value:  strconv.Itoa(limit),
		admits: sameLimit(recipe.Shared(int64(limit)), strconv.Itoa(limit)),
	}, nil
}

// Limit is the number of permits.
func (s *Semaphore) Limit() int { return int(s.limit) }

// Acquire waits for a permit, in first-come order. If ctx ends, the
// semaphore is closed or the session is lost first, it returns the error
// and takes its key back out of the queue.
func (s *Semaphore) Acquire(ctx context.Context) (*Hold, error) { return s.acquire(ctx, false) }

// TryAcquire takes a permit if one is free and nobody waits before it, and
// returns ErrLocked otherwise, leaving no key behind.
func (s *Semaphore) TryAcquire(ctx context.Context) (*Hold, error) { return s.acquire(ctx, true) }

// Close releases the permits this Semaphore holds, ends Acquire calls under
// way with ErrClosed and, unless the session is shared, revokes the lease.
// It waits at most about a TTL and is idempotent.
func (s *Semaphore) Close() error { return s.b.closeNow() }

// Shutdown is Close bounded by ctx as well as by the TTL.
func (s *Semaphore) Shutdown(ctx context.Context) error { return s.b.shutdown(ctx) }

func (s *Semaphore) acquire(ctx context.Context, try bool) (*Hold, error) {
	return s.b.acquire(ctx, try, func(ctx context.Context) (*Hold, error) {
		sess, err := s.b.session(ctx)
		if err != nil {
			return nil, err
		}
		// The oldest limit+1 keys: the oldest says which limit is in
		// force, and if fewer than limit keys are ahead of ours they are
		// all among them.
		e, rs, err := put(ctx, s.queue, sess, "", s.value,
			clientv3.OpGet(s.queue.Prefix, clientv3.WithPrefix(),
				clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(s.limit+1)))
		if err != nil {
			return nil, err
		}
		first := rs[0].GetResponseRange().GetKvs()
		if len(first) > 0 && string(first[0].Value) != s.value {
			return nil, withdraw(s.queue, sess, e, fmt.Errorf("%w: limit %d, but %s holds with %.20q",
				ErrLimitMismatch, s.limit, first[0].Key, first[0].Value))
		}
		var ahead []*mvccpb.KeyValue
		for _, kv := range first {
			if kv.CreateRevision < e.Rev {
				ahead = append(ahead, kv)
			}
		}
		if len(s.admits.Blockers(ahead)) > 0 {
			if try {
				return nil, withdraw(s.queue, sess, e, ErrLocked)
			}
			if e.Header, err = s.queue.Wait(ctx, sess, e, s.admits); err != nil {
				return nil, err
			}
		}
		return newHold(s.b, sess, e.Key, e.Rev, e.Header+1, nil), nil
	})
}

// sameLimit adds to a semaphore's rule that every key queued before ours
// records our limit. Acquire refuses to join a queue whose oldest key
// records another, but a refused key stays until its withdrawal lands, and
// keys further back are not checked; were such a key to become the oldest,
// an acquirer of its limit would be admitted by it. Waiting for every key
// of another limit ahead to go keeps all holders on one limit, and so at
// most that many.
func sameLimit(r recipe.Rule, value string) recipe.Rule {
	return recipe.Rule{Last: r.Last, Blockers: func(before []*mvccpb.KeyValue) []*mvccpb.KeyValue {
		if b := r.Blockers(before); len(b) > 0 {
			return b
		}
		var other []*mvccpb.KeyValue
		for _, kv := range before {
			if string(kv.Value) != value {
				other = append(other, kv)
			}
		}
		return other
	}}
}
