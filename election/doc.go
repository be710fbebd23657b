// Package election elects one leader among candidates over etcd, tells the
// leader the moment it may have lost, and fences its writes.
//
// The shortest use runs a singleton job on whichever process leads:
//
//	e, err := election.New(cli, "billing")
//	if err != nil { ... }
//	defer e.Close()
//	err = e.Run(ctx, hostname, func(ctx context.Context, l *election.Leadership) error {
//		return billing.Loop(ctx) // ctx is cancelled the moment leadership is lost
//	})
//
// Or step by step:
//
//	l, err := e.Campaign(ctx, hostname) // blocks until leading
//	if err != nil { ... }
//	defer l.Resign(context.Background())
//	for {
//		select {
//		case <-l.Done(): // lost: stop acting as leader; l.Err() says why
//			return
//		case job := <-jobs:
//			_, err := l.Do(ctx, clientv3.OpPut(job.Key, job.Result)) // ErrNotLeader once deposed
//		}
//	}
//
// # Safety
//
// At most one candidate leads at a time: the leader is the candidate whose
// key has the lowest create revision, and a candidate reports leading only
// after reading, in one transaction, that its own key still exists and no
// older key does. When a leader loses its lease, by a partition or a stall
// of its keep-alives, its Leadership's Done is closed before etcd can let
// anyone else lead: at the session's local deadline (the send time of the
// last acknowledged keep-alive + TTL − margin, which is never later than
// the server's expiry). Resign closes Done before deleting the key.
//
// Two risks remain. If someone else deletes the leader's key (an operator,
// or a revoke of its lease), the next candidate may lead a moment before
// the old leader sees the deletion and closes Done. And a leader paused
// (GC, a stopped VM) after checking Done may act after someone else took
// over. Writes to etcd are made safe by
// the fencing guard (Leadership.Txn, Do, IsLeader), which etcd checks in
// the write's own transaction, in both cases; other systems can check
// Leadership.Rev, the fencing token, which grows with every leadership.
//
// # Speed
//
// A resigned leader is followed within about a round trip: the next
// candidate watches only its predecessor's key, with a watch the server
// registers in sync. A crashed leader is followed when its lease expires,
// within about the TTL (WithTTL, default 10 s). A leader cut off from etcd
// learns of it a margin before that.
//
// # Sessions
//
// Candidates live on leases. By default an Election makes its own
// session.Manager with the TTL of WithTTL and closes it in Close; with
// WithSessionManager, the elections and locks of one process share one
// lease. Either way a session that ended is replaced by a fresh one on the
// next campaign.
//
// # Compatibility
//
// Keys are those of etcd's election recipe: keys.ElectionPfx(ns, name) +
// "/" + the lease ID in hex, under "<namespace>/elections/<name>". etcd's
// concurrency.NewElection(session, "/roster/elections/billing") and
// "etcdctl elect /roster/elections/billing" take part in the same election
// and see roster's candidates, and roster's see theirs.
package election
