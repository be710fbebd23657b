package recipe

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Fence makes etcd writes conditional on still holding a key: the key must
// exist with the create revision it had when it was acquired. That
// comparison is checked by etcd inside the write's transaction, so it holds
// even when the holder's own view is late (a process pause, a slow clock).
type Fence struct {
	Client *clientv3.Client
	Key    string
	Rev    int64
	// Done, if set, returns a channel closed once the holder knows it no
	// longer holds the key; writes are then refused without asking etcd.
	Done func() <-chan struct{}
	// Err, if set, says why Done was closed, for the refusal's error.
	Err func() error
	// ErrNotHeld is what a write returns when the key is not held, such
	// as election.ErrNotLeader.
	ErrNotHeld error
	// Refused, if set, is called for every write refused as not held.
	Refused func()
}

// Cmp is the comparison "the key is still held", for use in one's own
// transactions.
func (f Fence) Cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev)
}

// Do commits ops if the key is still held, and returns ErrNotHeld if not.
func (f Fence) Do(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	if f.lost() {
		return nil, f.ended()
	}
	if f.Client.Ctx().Err() != nil {
		return nil, ErrClientClosed
	}
	resp, err := f.Client.Txn(ctx).If(f.Cmp()).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, f.notHeld()
	}
	return resp, nil
}

// Txn returns a transaction that commits only if the key is still held:
// its Commit returns ErrNotHeld if not, and otherwise the outcome of the
// caller's own If/Then/Else, which run nested inside the guard, so that
// Succeeded keeps its usual meaning. If, Then and Else may be called more
// than once; their arguments are appended.
func (f Fence) Txn(ctx context.Context) clientv3.Txn {
	return &fencedTxn{f: f, ctx: ctx}
}

func (f Fence) lost() bool {
	if f.Done == nil {
		return false
	}
	select {
	case <-f.Done():
		return true
	default:
		return false
	}
}

// ended is the error of a write refused before it was sent: it wraps the
// reason the hold ended, too.
func (f Fence) ended() error {
	if f.Refused != nil {
		f.Refused()
	}
	var cause error
	if f.Err != nil {
		cause = f.Err()
	}
	return fmt.Errorf("%w: %s: ended, not sent: %w", f.ErrNotHeld, f.Key, cause)
}

func (f Fence) notHeld() error {
	if f.Refused != nil {
		f.Refused()
	}
	return fmt.Errorf("%w: %s no longer has create revision %d", f.ErrNotHeld, f.Key, f.Rev)
}

type fencedTxn struct {
	f       Fence
	ctx     context.Context
	cmps    []clientv3.Cmp
	thenOps []clientv3.Op
	elseOps []clientv3.Op
}

func (t *fencedTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	t.cmps = append(t.cmps, cs...)
	return t
}

func (t *fencedTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.thenOps = append(t.thenOps, ops...)
	return t
}

func (t *fencedTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.elseOps = append(t.elseOps, ops...)
	return t
}

func (t *fencedTxn) Commit() (*clientv3.TxnResponse, error) {
	if t.f.lost() {
		return nil, t.f.ended()
	}
	if t.f.Client.Ctx().Err() != nil {
		return nil, ErrClientClosed
	}
	resp, err := t.f.Client.Txn(t.ctx).
		If(t.f.Cmp()).
		Then(clientv3.OpTxn(t.cmps, t.thenOps, t.elseOps)).
		Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, t.f.notHeld()
	}
	inner := (*clientv3.TxnResponse)(resp.Responses[0].GetResponseTxn())
	if inner == nil {
		return nil, fmt.Errorf("fenced txn on %s: no nested response", t.f.Key)
	}
	inner.Header = resp.Header
	return inner, nil
}
