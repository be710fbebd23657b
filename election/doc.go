// Package election elects one leader among candidates over etcd, tells the
// leader the moment it may have lost, and fences its writes.
//
// The shortest use runs a singleton job on whichever process leads:
//
//	e, err := election.New(cli, "billing")
//	if err != nil { ... }
//	defer e.Close()
//	err = e.Run(ctx, hostname, func(ctx context.Context, l *election.Leadership) error {
//		return billing.Loop(ctx, l) // ctx is cancelled the moment leadership is lost
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
// older key does. When a leader's lease stops being renewed (a partition, a
// stall), Done is closed before etcd can let anyone else lead: at the
// session's local deadline, the send time of the last acknowledged
// keep-alive + TTL − margin, which is never later than the server's expiry.
// Resign closes Done before it deletes the key.
//
// Two risks remain. If someone else deletes the leader's key (an operator,
// a revoke of its lease), the next candidate may lead a moment before the
// old leader hears of it. And a leader paused (GC, a stopped VM) between
// checking Done and acting may act after someone else took over; on
// resuming, Done, Err and the fenced writes check the deadline themselves,
// so it learns of the loss before it sends anything more. Writes to etcd
// are safe in both cases through the fence: Txn, Do and Guard make a write
// conditional, in etcd, on the leader key still having the create revision
// Token. Other systems can be handed Token, which never goes backwards from
// one leadership to the next.
//
// Err after a loss wraps ErrLost (and roster.ErrLost) and the cause:
// ErrKeyDeleted, or the session's session.ErrExpired, ErrLeaseGone or
// ErrClosed. Resign and Close end a leadership with ErrResigned and
// ErrClosed, which are not losses.
//
// # Speed
//
// A resigned leader is followed within about a round trip: the next
// candidate watches only its predecessor's key, with a watch the server
// registers in sync (etcd's own recipe may wait up to 100 ms for its
// catch-up loop). A crashed leader is followed when its lease expires,
// within about the TTL (WithTTL, default roster.DefaultTTL). A leadership
// given up while etcd was electing a Raft leader has its lease revoked as
// soon as etcd answers, so it does not hold up the next leader.
//
// # Observing
//
// Observe delivers every state of the election, whoever leads, on a channel
// of the caller's: the current state, then each change of leader or value,
// and the latest state even to a reader that falls behind. A state it cannot
// confirm with etcd within twice its progress interval (WithProgressInterval,
// default 5 s) is delivered again with Err wrapping ErrStale, and again
// without once etcd answers; a Leader with Revision 0 and Err set means
// nothing could be read yet.
//
// # Sessions and options
//
// Candidates live on leases. By default an Election keeps its own
// session.Manager with the TTL of WithTTL and closes it in Close; with
// WithSessionManager the elections and locks of one process share one lease,
// and a second open Election of one name on that Manager is refused
// (session.ErrNameInUse): both would campaign with the same key.
//
// Options follow one rule: zero means the default, a negative or
// contradictory value is an error wrapping roster.ErrInvalidOption, nil
// means none. A nil client is roster.ErrNilClient. Close resigns and stops
// everything the Election started, never waiting much longer than a TTL;
// Shutdown does the same within the caller's context. A campaign that fails
// after its key may have been written spends up to 2 s more taking it back
// out; if etcd stays out of reach for those 2 s, the Election goes on in
// the background until etcd answers, the session ends or Close gives up,
// and its next Campaign waits for that first.
//
// # Observability
//
// WithLogger logs leadership gained, ended (resigned, closed) and lost,
// with the cause. WithMeterProvider records roster.election.leader (1 while
// this process leads), roster.election.changes (by change: gained, lost,
// resigned), roster.election.tenure, roster.election.campaign.duration and
// roster.election.fenced.refused, with the election's name, and passes the
// provider and logger on to its own sessions.
//
// # Compatibility
//
// Keys are those of etcd's election recipe: <namespace>/elections/<name>/
// followed by the lease ID in hex (default namespace "/roster"). etcd's
// concurrency.NewElection(session, "/roster/elections/billing") and
// "etcdctl elect /roster/elections/billing" take part in the same election:
// each side sees the other's candidates.
package election
