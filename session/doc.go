// Package session keeps an etcd lease alive and says, conservatively, when it
// may have been lost.
//
// Everything roster attaches to etcd (registrations, election candidacies,
// lock holders) lives on a lease: when the process dies the lease expires and
// its keys vanish. etcd's own concurrency.Session renews in the background
// and computes its deadline from the time a renewal's reply arrives, so under
// a partition its holder learns of the loss after etcd may already have
// deleted its keys. A Session here dates every renewal from the moment the
// request was sent, and presumes the lease lost at
//
//	send time of the last acknowledged keep-alive + TTL − margin
//
// which can never be later than the server's own expiry. Done is closed then,
// or as soon as etcd answers that the lease is gone, whichever is first; Err
// then wraps roster.ErrLost and says which (ErrExpired, ErrLeaseGone).
//
// A lease presumed lost may still exist: a new etcd leader extends every
// lease by about a TTL, and its keys then block whoever is next in line. So
// the session revokes it itself, sending the revoke again and again until
// etcd answers (for up to three TTLs), and its keys go the moment etcd is
// back rather than a TTL later.
//
// A Session is one lease and ends for good. A Manager hands one live Session
// to many users (elections and locks of one process), grants a new one after
// the last has ended, and reserves names (Claim) so that two users cannot
// share one key of its lease.
//
//	s, err := session.New(ctx, cli, session.WithTTL(10*time.Second))
//	if err != nil { ... }
//	defer s.Close()
//	cli.Put(ctx, key, val, clientv3.WithLease(s.Lease()))
//	<-s.Done() // the lease may be gone: stop acting on what it guarded
//
// # Options and ending
//
// A zero option means its default (WithTTL(0) is roster.DefaultTTL); a
// negative one is an error wrapping roster.ErrInvalidOption, and so is a TTL
// below roster.MinTTL. A nil client is roster.ErrNilClient.
//
// Close revokes the lease and waits for the session's goroutines, never
// longer than about a TTL, since the lease expires by itself by then;
// Shutdown does the same within a context of the caller's.
//
// # Observability
//
// WithLogger logs state changes only: a lease lost, and a lost lease revoked
// (or not). WithMeterProvider records roster.session.keepalive.duration (the
// round trip of each keep-alive), roster.session.deadline.remaining (how
// much time was left before the local deadline when a keep-alive was
// acknowledged: near zero means close to a loss) and roster.session.losses
// (by cause: expired, lease_gone).
package session
