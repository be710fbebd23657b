package recipe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/session"
)

const (
	// maxResyncs bounds how often a wait re-opens its watches when writes
	// keep landing between a read and the watches' creation; after that it
	// keeps watches the server catches up within its 100 ms sync period.
	maxResyncs = 3
	// renewTimeout bounds the renewal that tells whether a deleted key took
	// its lease with it.
	renewTimeout = time.Second
)

// errResync asks for the watches to be re-opened from a fresher revision.
var errResync = errors.New("resync")

// state is a consistent read of the queue: our key still held e.Rev at
// store revision rev, and blockers stood between it and its turn.
type state struct {
	rev      int64
	blockers []*mvccpb.KeyValue
}

// Wait blocks until it is e's turn under r and returns the store revision
// at which that was read: e's key still existed with e.Rev, nothing blocked
// it. It returns an error if ctx is done, the session ends, or e's key is
// deleted (ErrKeyDeleted; never success without the key, etcd #11051).
//
// On any error while the session lives, Wait withdraws e's key (Delete, on
// a fresh context bounded by a couple of seconds), so a cancelled wait
// leaves nothing behind (etcd #21128). If etcd cannot be reached for that,
// the returned error says so, and the key stays until the session ends or
// the lease enqueues again (which re-uses it). Once the session has ended,
// nobody renews its lease and the key goes with it.
//
// Wait watches only the keys r returns and e's own key, from the read's
// revision + 1, so the server registers its watches in sync and delivers
// the deletion it waits for at once. etcd's own recipes watch from the
// read's revision itself, which the server serves from a catch-up loop
// that runs every 100 ms. Writes that land between the read and the
// watches' creation are caught by reading again once they exist.
func (q Queue) Wait(ctx context.Context, s *session.Session, e Entry, r Rule) (int64, error) {
	bctx, stop := bound(ctx, s)
	rev, err := q.wait(bctx, s, e, r)
	stop()
	if err == nil {
		return rev, nil
	}
	err = explain(ctx, s, err)
	if s.Err() != nil {
		return 0, err // the key goes with the lease, which nobody renews now
	}
	if werr := q.Withdraw(e); werr != nil {
		return 0, fmt.Errorf("%w (and withdrawing %s: %w)", err, e.Key, werr)
	}
	return 0, err
}

func (q Queue) wait(ctx context.Context, s *session.Session, e Entry, r Rule) (int64, error) {
	bo := backoff.Backoff{Min: 20 * time.Millisecond, Max: time.Second}
	resyncs := 0
	st, err := q.check(ctx, e, r)
	for {
		switch {
		case errors.Is(err, ErrKeyDeleted):
			return 0, keyLost(ctx, s)
		case err != nil:
			return 0, err
		case len(st.blockers) == 0:
			return st.rev, nil
		}
		var next state
		next, err = q.await(ctx, s, e, r, st, resyncs < maxResyncs)
		switch {
		case errors.Is(err, errResync):
			resyncs++
			st, err = next, nil
		case errors.Is(err, errWatch):
			if err = backoff.Sleep(ctx, bo.Next()); err == nil {
				st, err = q.check(ctx, e, r)
			}
		default:
			resyncs = 0
			st = next
		}
	}
}

// await watches the blockers of st and e's own key until something
// changes, and returns the state read after that change.
func (q Queue) await(ctx context.Context, s *session.Session, e Entry, r Rule, st state, insist bool) (state, error) {
	keys := []string{e.Key}
	for _, kv := range st.blockers {
		keys = append(keys, string(kv.Key))
	}
	w := watchDeletes(ctx, q.Client, st.rev+1, keys...)
	defer w.close()
	for {
		select {
		case n := <-w.notes:
			deleted, err := w.take(n)
			switch {
			case err != nil:
				return st, err
			case deleted == e.Key:
				return st, ErrKeyDeleted
			case deleted != "":
				return q.check(ctx, e, r)
			case !n.resp.Created || !w.established() || w.synced():
				continue
			}
			// Writes landed between the read and the watches: read again,
			// now that the watches cover everything after st.rev.
			next, err := q.check(ctx, e, r)
			if err != nil || len(next.blockers) == 0 {
				return next, err
			}
			if insist || !sameKeys(next.blockers, st.blockers) {
				return next, errResync
			}
			// Same blockers: these watches see their deletion, if later.
		case <-s.Done():
			return st, s.Err()
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// check reads, in one transaction, e's own key and the keys queued before
// it, and applies r. It returns ErrKeyDeleted if e's key is gone.
func (q Queue) check(ctx context.Context, e Entry, r Rule) (state, error) {
	opts := []clientv3.OpOption{
		clientv3.WithPrefix(),
		clientv3.WithMaxCreateRev(e.Rev - 1),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend),
	}
	if r.Last > 0 {
		opts = append(opts, clientv3.WithLimit(r.Last))
	}
	resp, err := q.Client.Txn(ctx).Then(clientv3.OpGet(e.Key), clientv3.OpGet(q.Prefix, opts...)).Commit()
	if err != nil {
		return state{}, fmt.Errorf("read queue %s: %w", q.Prefix, err)
	}
	own := resp.Responses[0].GetResponseRange().GetKvs()
	if len(own) == 0 || own[0].CreateRevision != e.Rev {
		return state{}, ErrKeyDeleted
	}
	before := resp.Responses[1].GetResponseRange().GetKvs()
	slices.Reverse(before) // oldest first
	return state{rev: resp.Header.Revision, blockers: r.Blockers(before)}, nil
}

// keyLost explains the loss of our key. A renewal tells at once whether
// the lease went with it; the session then ends now rather than at its
// next renewal, and the error wraps the session's error too.
func keyLost(ctx context.Context, s *session.Session) error {
	rctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	_ = s.Renew(rctx)
	if err := s.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyDeleted, err)
	}
	return ErrKeyDeleted
}

func sameKeys(a, b []*mvccpb.KeyValue) bool {
	return slices.EqualFunc(a, b, func(x, y *mvccpb.KeyValue) bool {
		return x.CreateRevision == y.CreateRevision && string(x.Key) == string(y.Key)
	})
}
