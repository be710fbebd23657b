package recipe

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/session"
)

// Idempotent requests are hedged (backoff.Hedge): sent again every
// 50..250 ms while unanswered, each attempt bounded by attemptTimeout, at
// most maxInFlight at once.
var hedging = backoff.Backoff{Min: 50 * time.Millisecond, Max: 250 * time.Millisecond}

const (
	attemptTimeout = 2 * time.Second
	maxInFlight    = 16
)

// withdrawTimeout bounds the clean-up of a failed wait. It runs on a fresh
// context (the caller's may be cancelled already), so it must not hang the
// caller when etcd is out of reach; the Sweeper then goes on with it.
const withdrawTimeout = 2 * time.Second

// Queue is one recipe queue: the keys under Prefix, oldest create revision
// first. Prefix ends with '/', e.g. keys.ElectionPrefix or keys.LockPrefix.
// Sweeper, if set, takes back in the background the keys that failed
// acquisitions could not take back at once.
type Queue struct {
	Client  *clientv3.Client
	Prefix  string
	Sweeper *Sweeper
}

// Entry is one participant's place in a queue.
type Entry struct {
	// Key is Prefix + the lease ID in %x.
	Key string
	// Rev is the key's create revision: its place in the queue and, once
	// it holds, its fencing token.
	Rev int64
	// Header is the store revision when the entry was made or found.
	Header int64
	// Value is the key's value: ours, or the existing key's if Reused.
	Value string
	// Reused says the lease had a key in the queue already, which Enqueue
	// kept (as etcd's recipes do) rather than queueing twice.
	Reused bool
}

// Enqueue puts our key with value, attached to the session's lease, in one
// transaction that instead returns the key if the lease already has one.
// If etcd says the lease is gone, the session learns it and Enqueue
// returns the session's error; it gives up when the session ends.
func (q Queue) Enqueue(ctx context.Context, s *session.Session, value string) (Entry, error) {
	key := keys.LeaseKey(q.Prefix, int64(s.Lease()))
	resp, err := Put(ctx, s, q.Client, key, q.Sweeper, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return q.Client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, value, clientv3.WithLease(s.Lease()))).
			Else(clientv3.OpGet(key)).
			Commit()
	})
	if err != nil {
		return Entry{}, fmt.Errorf("enqueue %s: %w", key, err)
	}
	e := Entry{Key: key, Rev: resp.Header.Revision, Header: resp.Header.Revision, Value: value}
	if resp.Succeeded {
		return e, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 { // cannot happen: the compare just saw the key
		return Entry{}, fmt.Errorf("enqueue %s: %w", key, ErrKeyDeleted)
	}
	if kvs[0].Lease != int64(s.Lease()) {
		return Entry{}, fmt.Errorf("enqueue %s: %w (lease %x)", key, ErrForeignKey, kvs[0].Lease)
	}
	e.Rev, e.Value, e.Reused = kvs[0].CreateRevision, string(kvs[0].Value), true
	return e, nil
}

// Check reports, in one consistent read, whether it is e's turn under r:
// true with the store revision at which e's key still existed with e.Rev
// and nothing blocked it. It returns ErrKeyDeleted if e's key is gone.
func (q Queue) Check(ctx context.Context, e Entry, r Rule) (turn bool, rev int64, err error) {
	st, err := q.check(ctx, e, r)
	if err != nil {
		return false, 0, err
	}
	return len(st.blockers) == 0, st.rev, nil
}

// Withdraw removes e's key, of session s, with Delete on a fresh, short
// context, for clean-up after a failed or cancelled wait whose own context
// may be done. If etcd does not answer in time, the queue's Sweeper goes on
// in the background and Withdraw returns nil; without one, the error.
func (q Queue) Withdraw(s *session.Session, e Entry) error {
	del := func(ctx context.Context) error {
		_, err := Delete(ctx, q.Client, e.Key, e.Rev)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	err := del(ctx)
	if unanswered(err) && q.Sweeper.sweep(s, e.Key, del) {
		return nil
	}
	return err
}

// Abandon cleans up after a put of key whose outcome is unknown: etcd may
// have applied it without the answer arriving, so a cancelled campaign or
// lock, or one whose connection was reset, could otherwise leave its key
// behind, in the queue for as long as its session lives. The key is deleted
// if it is attached to lease, on a fresh short context (the client
// reconnects meanwhile).
func Abandon(cli *clientv3.Client, key string, lease clientv3.LeaseID) error {
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	return abandon(ctx, cli, key, lease)
}

func abandon(ctx context.Context, cli *clientv3.Client, key string, lease clientv3.LeaseID) error {
	_, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
		Then(clientv3.OpDelete(key)).
		Commit()
	return err
}

// Delete deletes key only if its create revision is still rev, so a late
// or repeated release can never remove a newer key of the same name (etcd
// #22082). deleted is false when the key was already gone or replaced.
//
// Being idempotent, the delete is sent again while no attempt has been
// answered (backoff.Hedge), so one stuck on a member whose leader just died
// does not hold up a release until ctx ends.
func Delete(ctx context.Context, cli *clientv3.Client, key string, rev int64) (deleted bool, err error) {
	if cli.Ctx().Err() != nil {
		return false, fmt.Errorf("delete %s: %w", key, ErrClientClosed)
	}
	resp, err := backoff.Hedge(ctx, hedging, maxInFlight,
		func(ctx context.Context) (*clientv3.TxnResponse, error) {
			ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), attemptTimeout)
			defer cancel()
			return cli.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
				Then(clientv3.OpDelete(key)).
				Commit()
		},
		func(_ *clientv3.TxnResponse, err error) bool { return err == nil || cli.Ctx().Err() != nil }, nil)
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", key, err)
	}
	return resp.Succeeded, nil
}
