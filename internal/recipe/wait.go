package recipe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/session"
)

const (
	// maxResyncs bounds how often a monitor re-opens its watch when writes
	// keep landing between a read and the watch's creation; after that it
	// keeps a watch the server catches up within its 100 ms sync period.
	maxResyncs = 3
	// renewTimeout bounds the renewal that tells whether a deleted key took
	// its lease with it.
	renewTimeout = time.Second
)

// errResync asks for the watch to be re-opened from a fresher revision.
var errResync = errors.New("resync")

// state is a consistent read of the queue at store revision rev: our key
// still held e.Rev, before are the keys queued before it (the Last of
// them, oldest first; all of them if complete), and blockers is what the
// rule made of them.
type state struct {
	rev      int64
	before   []*mvccpb.KeyValue
	complete bool
	blockers []*mvccpb.KeyValue
}

// watched is the keys a wait follows. Knowing every key before ours, it
// follows them all and can tell our turn from their deletions alone, since
// no key created later can come before ours; otherwise it follows the
// blockers and reads again when one goes.
func (st state) watched() []*mvccpb.KeyValue {
	if st.complete {
		return st.before
	}
	return st.blockers
}

// Wait blocks until it is e's turn under r and returns the store revision
// at which that held: e's key still existed with e.Rev and nothing blocked
// it. It returns an error if ctx is done, the session ends, or e's key is
// deleted (ErrKeyDeleted; never success without the key, etcd #11051).
//
// On any error while the session lives, Wait withdraws e's key (Delete, on
// a fresh context bounded by a couple of seconds), so a cancelled wait
// leaves nothing behind (etcd #21128). If etcd cannot be reached for that,
// the queue's Sweeper goes on with it in the background (without one, the
// returned error says so and the key stays until the session ends). Once
// the session has ended, nobody renews its lease and the key goes with it.
//
// Wait watches only the keys that must go away, and e's own key, in one
// watch that starts when the server registers it, so it is in sync and gets
// the deletion it waits for at once; etcd's own recipes watch from the
// read's revision, a revision the server has passed, and such a watch is
// served by a catch-up loop that runs every 100 ms. Writes that land
// between the read and the watch's creation (its created header says) are
// caught by reading again once it exists. When the
// read saw every key before e's, the deletions alone tell when it is e's
// turn, and the hand-over costs no further read.
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
	if werr := q.Withdraw(s, e); werr != nil {
		return 0, fmt.Errorf("%w (and withdrawing %s: %w)", err, e.Key, werr)
	}
	return 0, err
}

func (q Queue) wait(ctx context.Context, s *session.Session, e Entry, r Rule) (int64, error) {
	bo := backoff.Backoff{Min: 20 * time.Millisecond, Max: time.Second}
	st, err := q.check(ctx, e, r)
	for {
		switch {
		case errors.Is(err, ErrKeyDeleted):
			return 0, keyLost(ctx, s)
		case err != nil && ctx.Err() != nil:
			return 0, ctx.Err() // a watch or read failed because ctx ended
		case errors.Is(err, errWatch):
			// A failed watch or read (a reset connection, a member
			// without a leader) ends no wait: ctx and the session do.
			if err = backoff.Sleep(ctx, bo.Next()); err == nil {
				st, err = q.check(ctx, e, r)
			}
			continue
		case err != nil:
			return 0, err
		case len(st.blockers) == 0:
			return st.rev, nil
		}
		var next state
		next, err = q.await(ctx, s, e, r, st)
		switch {
		case errors.Is(err, errResync):
			st, err = next, nil
		case err == nil:
			st = next
			bo.Reset()
		}
	}
}

// await watches until the state of st changes and returns the new state:
// derived from the deletions seen when st was complete, read otherwise.
func (q Queue) await(ctx context.Context, s *session.Session, e Entry, r Rule, st state) (state, error) {
	keys := []string{e.Key}
	for _, kv := range st.watched() {
		keys = append(keys, string(kv.Key))
	}
	w := watchDeletions(ctx, q.Client, 0, keys...)
	defer w.close()
	for {
		select {
		case resp, ok := <-w.ch:
			deleted, err := w.take(resp, ok)
			if err != nil {
				return st, err
			}
			if resp.Created {
				if w.current(st.rev) {
					continue
				}
				// Writes landed between the read and the watch: read again,
				// now that the watch covers everything after its creation.
				next, err := q.check(ctx, e, r)
				if err != nil || len(next.blockers) == 0 {
					return next, err
				}
				if !sameKeys(next.watched(), st.watched()) {
					return next, errResync
				}
				continue // same keys: this watch sees their deletion, if later
			}
			if slices.Contains(deleted, e.Key) {
				return st, ErrKeyDeleted
			}
			left := slices.DeleteFunc(slices.Clone(st.watched()), func(kv *mvccpb.KeyValue) bool {
				return slices.Contains(deleted, string(kv.Key))
			})
			if len(left) == len(st.watched()) {
				continue // deletes of other keys in the watched range
			}
			if !st.complete {
				return q.check(ctx, e, r)
			}
			// Every key before ours is accounted for, up to this response's
			// last event: the rule decides from what is left. Not up to its
			// header's revision: a watch catching up (resumed after a broken
			// stream) gets batches stamped with the store's current
			// revision, and our own key's deletion may lie between the two.
			last := resp.Events[len(resp.Events)-1].Kv.ModRevision
			st = state{rev: last, before: left, complete: true, blockers: r.Blockers(left)}
			if len(st.blockers) == 0 {
				return st, nil
			}
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
		if Transient(err) {
			return state{}, fmt.Errorf("%w: read queue %s: %w", errWatch, q.Prefix, err)
		}
		return state{}, fmt.Errorf("read queue %s: %w", q.Prefix, err)
	}
	own := resp.Responses[0].GetResponseRange().GetKvs()
	if len(own) == 0 || own[0].CreateRevision != e.Rev {
		return state{}, ErrKeyDeleted
	}
	rng := resp.Responses[1].GetResponseRange()
	before := rng.GetKvs()
	slices.Reverse(before) // oldest first
	return state{
		rev:      resp.Header.Revision,
		before:   before,
		complete: !rng.GetMore(), // etcd sets More when the limit cut the filtered list
		blockers: r.Blockers(slices.Clone(before)),
	}, nil
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

// Transient says a request failed for a reason that may pass: the
// connection, or etcd's leader.
func Transient(err error) bool {
	return status.Code(rpctypes.Error(err)) == codes.Unavailable
}

func sameKeys(a, b []*mvccpb.KeyValue) bool {
	return slices.EqualFunc(a, b, func(x, y *mvccpb.KeyValue) bool {
		return x.CreateRevision == y.CreateRevision && string(x.Key) == string(y.Key)
	})
}
