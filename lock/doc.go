// Package lock provides distributed locks on etcd that tell their holder
// when they are lost: a mutex, a counting semaphore and a readers–writer
// lock.
//
// A lock in etcd is a key attached to the holder's lease. If the holder
// pauses (GC, a stopped VM) or is cut off, its lease expires and someone
// else gets the lock while the first still believes it holds. etcd's own
// concurrency.Mutex never says so afterwards. Here every acquisition
// returns a Hold whose Done channel closes as soon as the lock may be lost:
// at the session's local deadline (the send time of the last acknowledged
// keep-alive + TTL − margin, which comes before etcd can expire the lease),
// when etcd says the lease is gone, or when the key is deleted. Because a
// process can still pause between checking Done and acting, a Hold also
// fences: Txn commits only while the Hold's key still exists with its
// create revision, and Token is that revision, for resources outside etcd.
//
//	mu, err := lock.NewMutex(cli, "billing")
//	if err != nil { ... }
//	defer mu.Close()
//
//	err = lock.WithLock(ctx, mu.Lock, func(ctx context.Context) error {
//		// ctx is cancelled if the lock is lost.
//		return charge(ctx)
//	})
//
// Or by hand, with a fenced write:
//
//	h, err := mu.Lock(ctx)
//	if err != nil { ... }
//	defer h.Release(ctx)
//	_, err = h.Txn(ctx).Then(clientv3.OpPut("/billing/cursor", next)).Commit()
//	if errors.Is(err, lock.ErrNotHeld) { ... } // lost: nothing was written
//
// # Key layout and etcd interoperation
//
// A Mutex uses etcd's own lock recipe: waiters put
// <namespace>/locks/<name>/<lease ID in hex> (default namespace "/roster")
// and are served by create revision, each waiting only for the key just
// ahead of it. etcd's concurrency.NewMutex(s, "/roster/locks/<name>") and
// `etcdctl lock /roster/locks/<name>` therefore exclude and are excluded by
// a Mutex. A waiter watches only the key ahead of it, from just after its
// own read, so a release usually reaches it within a round trip instead of
// at etcd's 100 ms catch-up tick for watches that start in the past.
//
// Semaphores (<namespace>/semaphores/<name>/…) and RW locks
// (<namespace>/rwlocks/<name>/read-… and write-…) have no etcd
// counterpart; they give every acquisition its own key.
//
// # Sessions
//
// By default each Mutex, Semaphore and RWMutex keeps its own session: one
// lease with a TTL of DefaultTTL (WithTTL changes it), granted at the first
// acquisition and renewed until Close, which revokes it. A dead holder's
// locks are freed when its lease expires. WithSessionManager shares a
// session.Manager with other locks and elections instead: fewer leases,
// one keep-alive stream, and if that session ends every Hold on it ends.
//
// In etcd's recipe a lease has one key per mutex, so two etcd Mutexes on
// one session and one name both "acquire" (etcd #11360). Here the handles
// of one process that share a session and a mutex name take turns, as
// goroutines sharing one Mutex do: each Lock waits for the previous Hold's
// Release or loss.
package lock
