// Package lock provides distributed locks on etcd that tell their holder
// when they are lost: a mutex, a counting semaphore and a readers–writer
// lock.
//
// A lock in etcd is a key attached to the holder's lease. If the holder
// pauses (GC, a stopped VM) or is cut off, its lease expires and someone
// else gets the lock while the first still believes it holds; etcd's own
// concurrency.Mutex never says so afterwards. Here every acquisition
// returns a Hold whose Done channel closes as soon as the lock may be lost:
// at the session's local deadline (the send time of the last acknowledged
// keep-alive + TTL − margin, which comes before etcd can expire the lease),
// when etcd says the lease is gone, or when the key is deleted.
//
// Lock, RLock and Acquire wait until ctx ends, the lock is closed or the
// session is lost; a connection that fails under them ends one attempt,
// not the wait: they try again once the client has reconnected, and take
// back any key a put whose answer was lost may have left. The Try forms
// fail at once instead.
//
//	mu, err := lock.NewMutex(cli, "billing")
//	if err != nil { ... }
//	defer mu.Close()
//
//	err = lock.WithLock(ctx, mu.Lock, func(ctx context.Context) error {
//		return charge(ctx) // ctx is cancelled if the lock is lost
//	})
//
// Or by hand, with a fenced write:
//
//	h, err := mu.Lock(ctx)
//	if err != nil { ... }
//	defer h.Release(context.Background())
//	_, err = h.Do(ctx, clientv3.OpPut("/billing/cursor", next))
//	if errors.Is(err, lock.ErrNotHeld) { ... } // lost: nothing was written
//
// # Fencing
//
// A process can pause between checking Done and acting. Writes to etcd that
// must not happen after the lock is lost go through Txn or Do (or Guard in
// one's own transaction), which etcd applies only while the Hold's key
// still has its create revision, Token. Writes elsewhere should carry Token
// and be refused by the resource when a smaller one than the last it saw
// arrives: no later Hold of the lock has a smaller token. A process resumed
// after a pause past its TTL learns of the loss from Done, Err or the fence
// itself, which check the deadline, before it sends anything more.
//
// Err after a loss wraps ErrLost (and roster.ErrLost) and the cause:
// ErrKeyDeleted, or the session's session.ErrExpired, ErrLeaseGone or
// ErrClosed. Release and Close end a Hold with ErrReleased and ErrClosed,
// which are not losses.
//
// # Key layout and etcd interoperation
//
// A Mutex uses etcd's own lock recipe: waiters put
// <namespace>/locks/<name>/<lease ID in hex> (default namespace "/roster")
// and are served by create revision, each waiting only for the key just
// ahead of it. etcd's concurrency.NewMutex(s, "/roster/locks/<name>") and
// `etcdctl lock /roster/locks/<name>` therefore exclude and are excluded by
// a Mutex. A waiter watches the key ahead of it with a watch the server
// registers in sync, so a release reaches it within a round trip rather than
// at etcd's 100 ms catch-up tick.
//
// Semaphores (<namespace>/semaphores/<name>/…) and RW locks
// (<namespace>/rwlocks/<name>/read-… and write-…) have no etcd
// counterpart; they give every acquisition its own key.
//
// # Sessions and options
//
// By default each Mutex, Semaphore and RWMutex keeps its own session: one
// lease with the TTL of WithTTL (default roster.DefaultTTL), granted at the
// first acquisition and revoked by Close. A dead holder's locks are freed
// when its lease expires; a lease given up while etcd could not be reached
// is revoked as soon as etcd answers. WithSessionManager shares a
// session.Manager with other locks and elections instead: fewer leases, one
// keep-alive stream, and if that session ends every Hold on it ends. One
// lease has one key per mutex (two etcd Mutexes on one session both
// "acquire", etcd #11360), so a second open lock of one kind and name on a
// shared Manager is refused (session.ErrNameInUse), as in package election;
// the goroutines of one Mutex take turns.
//
// Options follow one rule: zero means the default, a negative or
// contradictory value is an error wrapping roster.ErrInvalidOption, nil
// means none. A nil client is roster.ErrNilClient. Close releases what the
// lock holds and stops what it started, never waiting much longer than a
// TTL; Shutdown does the same within the caller's context. An acquisition
// that fails after its key may have been written spends up to 2 s more
// taking it back out; if etcd stays out of reach for those 2 s, the lock
// goes on in the background until etcd answers, the session ends or Close
// gives up (a Mutex's next Lock, which would put the same key, waits for
// that first).
//
// # Observability
//
// WithLogger logs holds lost, with the cause. WithMeterProvider records
// roster.lock.wait.duration, roster.lock.holds, roster.lock.losses and
// roster.lock.fenced.refused, with the lock's kind and name, and passes the
// provider and logger on to its own sessions.
package lock
