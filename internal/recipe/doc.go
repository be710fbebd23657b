// Package recipe holds the queue primitives that election and lock share.
//
// It keeps etcd's recipe layout, so that etcd's concurrency package,
// etcdctl elect and etcdctl lock take part in the same queues: every
// participant puts one key, prefix + its lease ID in %x, attached to its
// lease, and participants are ordered by the keys' create revisions. The
// create revision of a held key is its fencing token.
//
// The pieces:
//
//   - Queue.Enqueue puts our key (or finds it, if this lease already has one).
//   - Queue.Wait blocks until a Rule says it is our turn: Exclusive for a
//     mutex or an election, Shared(n) for a semaphore, or a custom rule such
//     as readers and writers. It watches only the keys that must go away and
//     starts its watches in sync with the server, so a hand-over costs one
//     round trip instead of etcd's up to 100 ms. A failed or cancelled wait
//     withdraws its key.
//   - Delete removes a key only if it still has our create revision, and
//     sends the request again while unanswered (backoff.Hedge), so a
//     release does not wait on one a follower forwarded to a dead leader.
//   - Monitor reports when a held key is lost: its session ended, or the key
//     was deleted. Done and Err check the session themselves, so a process
//     resumed after a pause learns of a loss before it acts.
//   - Fence makes writes conditional on still holding the key, and refuses
//     them without sending once the holder knows it lost it.
//
// The shortest use, a mutex:
//
//	q := recipe.Queue{Client: cli, Prefix: keys.LockPrefix(ns, name)}
//	e, err := q.Enqueue(ctx, s, "")
//	rev, err := q.Wait(ctx, s, e, recipe.Exclusive())
//	m := recipe.NewMonitor(s, e.Key, e.Rev, rev+1, nil)
//	... // hold, until m.Done() or done
//	m.End(ErrUnlocked)                    // Done first, then release
//	recipe.Delete(ctx, cli, e.Key, e.Rev) // only if still ours
//	m.Stop(ErrUnlocked)
package recipe
