package recipe

import "go.etcd.io/etcd/api/v3/mvccpb"

// A Rule says when it is a participant's turn, from the keys queued before
// it.
type Rule struct {
	// Last limits the look-up to the Last keys queued just before ours;
	// 0 reads them all. A mutex needs only its predecessor.
	Last int64
	// Blockers receives the keys queued before ours (at most Last of them,
	// oldest first) and returns those whose deletion may make it our turn;
	// none means it is our turn now. Wait watches exactly these keys.
	Blockers func(before []*mvccpb.KeyValue) []*mvccpb.KeyValue
}

// Exclusive is the rule of a mutex or an election: our turn comes when no
// key is queued before ours. It waits for the immediate predecessor only,
// so a release wakes one waiter, not all of them.
func Exclusive() Rule {
	return Rule{Last: 1, Blockers: func(before []*mvccpb.KeyValue) []*mvccpb.KeyValue {
		return before
	}}
}

// Shared is the rule of a semaphore of n permits: our turn comes when fewer
// than n keys are queued before ours. While the n keys just before ours
// exist we cannot hold, so those are the ones to watch.
func Shared(n int64) Rule {
	n = max(n, 1)
	return Rule{Last: n, Blockers: func(before []*mvccpb.KeyValue) []*mvccpb.KeyValue {
		if int64(len(before)) < n {
			return nil
		}
		return before
	}}
}
