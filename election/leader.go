package election

import (
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Leader is the state of an election at one revision: who leads, or, with
// an empty Key, nobody.
type Leader struct {
	// Key is the leader's key, "" when nobody leads.
	Key string
	// Value is what the leader campaigned with or last proclaimed.
	Value string
	// Token is the leader key's create revision: its fencing token.
	Token int64
	// Lease is the lease the leader key is attached to.
	Lease clientv3.LeaseID
	// Revision is the store revision at which this was the state; 0 before
	// anything was read.
	Revision int64
	// Err is nil when Observe confirmed the state with etcd within its
	// bound. Otherwise it wraps ErrStale (and roster.ErrStale): this is the
	// last confirmed state, and etcd has not answered since.
	Err error
}

// Elected reports whether someone leads.
func (l Leader) Elected() bool { return l.Key != "" }

// same reports whether a and b are the same leader with the same value.
func (l Leader) same(o Leader) bool {
	return l.Key == o.Key && l.Token == o.Token && l.Value == o.Value
}

func leaderOf(kv *mvccpb.KeyValue, revision int64) Leader {
	return Leader{
		Key:      string(kv.Key),
		Value:    string(kv.Value),
		Token:    kv.CreateRevision,
		Lease:    clientv3.LeaseID(kv.Lease),
		Revision: revision,
	}
}
