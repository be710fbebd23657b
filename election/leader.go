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
	// Rev is the leader key's create revision: its fencing token.
	Rev int64
	// Lease is the lease the leader key is attached to.
	Lease clientv3.LeaseID
	// Revision is the store revision at which this was the state.
	Revision int64
}

// Elected reports whether someone leads.
func (l Leader) Elected() bool { return l.Key != "" }

// same reports whether a and b are the same leader with the same value.
func (l Leader) same(o Leader) bool {
	return l.Key == o.Key && l.Rev == o.Rev && l.Value == o.Value
}

func leaderOf(kv *mvccpb.KeyValue, revision int64) Leader {
	return Leader{
		Key:      string(kv.Key),
		Value:    string(kv.Value),
		Rev:      kv.CreateRevision,
		Lease:    clientv3.LeaseID(kv.Lease),
		Revision: revision,
	}
}
