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
// or as soon as etcd answers that the lease is gone, whichever is first.
//
// A Session is one lease and ends for good. A Manager hands one live Session
// to many users (elections and locks of one process) and grants a new one
// after the last has ended.
//
//	s, err := session.New(ctx, cli, session.WithTTL(10*time.Second))
//	if err != nil { ... }
//	defer s.Close()
//	cli.Put(ctx, key, val, clientv3.WithLease(s.Lease()))
//	<-s.Done() // the lease may be gone: stop acting on what it guarded
package session
