package lock

import (
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/recipe"
)

// Semaphore is a distributed counting semaphore: at most Limit holders at
// once, admitted in first-come order. A holder that dies frees its permit
// when its lease expires.
//
// Every key records the limit its holder assumed, and Acquire refuses
// (ErrLimitMismatch) to join a queue whose oldest key says otherwise: all
// keys of a live semaphore then agree, so no holder ever counts with a
// larger limit than the others. A new limit takes effect once every holder
// and waiter of the old one has gone.
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
	b, cfg, err := newBase(cli, "semaphore", name, opts)
	if err != nil {
		return nil, err
	}
	return &Semaphore{
		b:      b,
		queue:  recipe.Queue{Client: cli, Prefix: semaphorePrefix(cfg.namespace, name)},
		limit:  int64(limit),
		value:  strconv.Itoa(limit),
		admits: recipe.Shared(int64(limit)),
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
// It is idempotent.
func (s *Semaphore) Close() error { return s.b.shut() }

func (s *Semaphore) acquire(ctx context.Context, try bool) (*Hold, error) {
	return s.b.acquire(ctx, "semaphore", func(ctx context.Context) (*Hold, error) {
		sess, err := s.b.session(ctx)
		if err != nil {
			return nil, err
		}
		// The oldest key says which limit is in force; the count says
		// whether fewer than limit keys are ahead of ours (all are).
		e, rs, err := put(ctx, s.b.cli, sess, s.queue.Prefix, "", s.value,
			clientv3.OpGet(s.queue.Prefix, clientv3.WithFirstCreate()...),
			clientv3.OpGet(s.queue.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()))
		if err != nil {
			return nil, err
		}
		if oldest := rs[0].GetResponseRange().GetKvs(); len(oldest) > 0 && string(oldest[0].Value) != s.value {
			return nil, withdraw(s.queue, e, fmt.Errorf("%w: limit %d, but %s holds with %.20q",
				ErrLimitMismatch, s.limit, oldest[0].Key, oldest[0].Value))
		}
		if count(rs[1]) > s.limit {
			if try {
				return nil, withdraw(s.queue, e, ErrLocked)
			}
			if e.Header, err = s.queue.Wait(ctx, sess, e, s.admits); err != nil {
				return nil, err
			}
		}
		return newHold(s.b, sess, e.Key, e.Rev, e.Header+1, nil), nil
	})
}
