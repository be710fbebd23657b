// Package discovery finds the instances of services registered with
// package registry and picks one per call.
//
// A Discoverer works over your *clientv3.Client. Discoverer.Watch returns
// a Cache: a live, in-memory view of one service that is listed once and
// then kept current by a watch starting right after the list's revision,
// so no change is missed. The view is an immutable Snapshot behind an
// atomic pointer: reading it never blocks and never allocates.
//
// The shortest use:
//
//	d, err := discovery.New(cli)
//	if err != nil { ... }
//	defer d.Close()
//
//	users, err := d.Watch("users")
//	if err != nil { ... }
//	defer users.Close()
//	if err := users.WaitSynced(ctx); err != nil { ... }
//
//	rr := discovery.NewRoundRobin(users)
//	p, err := rr.Pick() // ErrNoInstances if none is serving
//	if err != nil { ... }
//	err = call(p.Instance.Addr)
//	p.Done(err) // always; a failure counts towards ejection
//
// For gRPC, skip the pickers: NewResolverBuilder makes
// grpc.NewClient("roster:///users", ...) follow the same cache.
//
// # Staying current
//
// A cache survives what etcd's own naming helpers do not. When the watch
// fails (compaction, a broken stream, a member that lost its leader: the
// watch requires one) the cache lists the service again and diffs against
// its view, retrying with backoff while etcd is unreachable. Meanwhile it
// keeps serving the last good view, and says how old it is: Snapshot()
// carries the Revision and SyncedAt of the view, and Cache.Err says why
// it is not current. A watch can also hang without failing, on a member cut
// off together with its client; so when the watch has been silent for the
// progress interval (WithProgressInterval), the cache checks etcd's
// revision with a linearizable read and asks the watch for a progress
// notification, restarting it if none comes. Staleness is thus bounded by
// about twice that interval.
//
// Keys under a service's prefix that are not valid instances (corrupt
// values, another program's keys) are skipped and counted
// (Snapshot.Skipped, Cache.Stats), never fatal.
//
// Handles are reference-counted: several Watch calls for one service
// share one watch, released when the last handle closes.
//
// # Changes
//
// Cache.Subscribe delivers what changed (added, removed, updated
// instances). The watch loop never waits for a subscriber: a slow one gets
// a single change from the view it last saw to the latest.
//
// # Picking
//
// Pickers read a Source (a Cache) and precompute their state once per
// snapshot, on the first Pick that sees it; every other Pick takes no lock
// and does not allocate. RoundRobin,
// Random, Weighted (smooth weighted round-robin over
// roster.Instance.EffectiveWeight), P2C (power of two choices on calls in
// flight) and ConsistentHash (sticky by key, minimal movement) all skip
// instances that are not serving, so draining instances stay visible in
// the snapshot but get no new work; WithFilter narrows further, e.g. by
// metadata with MatchMetadata.
//
// Every Pick must be followed by Picked.Done. Reporting failed calls
// there drives passive health checking: after WithEjection's number of
// consecutive failures an instance is ejected for a cool-down; the last
// usable instance is never ejected.
package discovery
