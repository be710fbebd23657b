// Package discovery finds the instances of services registered with
// package registry and picks one per call.
//
// The shortest use:
//
//	d, err := discovery.New(cli) // your *clientv3.Client
//	if err != nil { ... }
//	defer d.Close()
//
//	users, err := d.Watch("users")
//	if err != nil { ... }
//	defer users.Close()
//	if err := users.WaitSynced(ctx); err != nil { ... }
//
//	p2c, err := discovery.NewP2C(users)
//	if err != nil { ... }
//	p, err := p2c.Pick() // ErrNoInstances if none is serving
//	if err != nil { ... }
//	err = call(p.Instance.Addr)
//	p.Done(err) // always; a failure counts towards ejection
//
// For gRPC, package rostergrpc makes grpc.NewClient("roster:///users", ...)
// follow the same cache, and balances calls with these pickers.
//
// # Caches
//
// Discoverer.Watch returns a Cache: a live view of one service, listed once
// and then kept current by a watch from the revision after the list, so
// that no change is missed. Handles of one service on a Discoverer share
// one list and watch, released with the last handle.
//
// The view is an immutable Snapshot behind an atomic pointer: reading it is
// one atomic load and never blocks. Snapshots are persistent B+trees by
// instance ID: a change copies one path from the root to a leaf, O(log n),
// and shares the rest with the snapshot before, so a change costs about as
// much in a service of 100,000 instances as in one of 10, and snapshots may
// be kept as long as wanted. A re-list decodes again only the values whose
// revision changed. Equal metadata (zone, version) is held once.
//
// Keys under a service that are not valid instances (corrupt values,
// another program's keys) are skipped and counted (Snapshot.Skipped,
// Cache.Stats), never fatal.
//
// # Staying current
//
// When the watch fails (compaction, a broken stream, a member that lost its
// leader: the watch requires one), the cache lists again and reports the
// difference, retrying with backoff (WithBackoff) while etcd is
// unreachable, and serves its last view meanwhile. A watch can also go
// silent without failing, on a member cut off together with its client, or
// behind a black-holed connection, where even the creation of a watch never
// returns. So the cache watches its own freshness whatever call it is
// waiting on: when nothing has confirmed the view for 1.5 progress intervals
// (WithProgressInterval), Cache.Err wraps ErrStale (and roster.ErrStale);
// when the watch has been quiet for an interval, a linearizable read and a
// progress request check it, and a watch that does not answer is restarted.
// Staleness is thus reported within twice the progress interval, at the
// cost of one small read per idle interval and service. Snapshot's
// Revision, SyncedAt and Age say how old the view is.
//
// # Changes
//
// Cache.Changes(ctx) returns a channel of what each list or watch response
// added, updated or removed: the cache knows, so nothing is diffed. The
// first item is the whole view, once synced. Each call gets its own
// channel; the watch never waits for a reader: the items a slow reader has
// not taken are merged per instance (an instance added then removed is not
// reported; one updated twice, or removed and added back, is reported once
// as updated, as it is now), so it never loses the latest state. The channel closes when ctx ends or the cache, its
// Discoverer or the etcd client is closed.
//
// # Listing services
//
// Discoverer.Services lists the services registered under the namespace;
// Discoverer.WatchServices follows that set, with the same guarantees as a
// cache, and ServiceSet.Changes says which services came and went. A
// service is listed while it has at least one valid instance key.
//
// # Picking
//
// Pickers read a Source (a Cache, or anything returning snapshots such as
// NewSnapshot builds): RoundRobin, Random, Weighted (smooth weighted
// round-robin over roster.Instance.EffectiveWeight), P2C (power of two
// choices on calls in flight) and ConsistentHash (sticky by key, minimal
// movement; a KeyedPicker). All skip instances that are not serving, so
// draining instances stay visible in the snapshot but get no new work;
// WithFilter narrows further, e.g. by metadata with MatchMetadata.
//
// A Pick takes no lock and does not allocate. The first Pick after the
// instances change brings the picker's state up to date by comparing the
// two snapshots' trees, which share all but the changed paths: a change
// costs O(log n) (for ConsistentHash, the instance's own ring points), while
// concurrent picks keep using the previous state.
//
// Every Pick must be followed by Picked.Done. Reporting failed calls there
// drives passive health checking: after WithEjection's number of consecutive
// failures an instance is ejected for a cool-down; the last usable instance
// is never ejected.
//
// # Options and errors
//
// Constructors take the caller's client and options. A zero option value
// means the default; a negative or otherwise impossible one is an error
// wrapping roster.ErrInvalidOption; a nil client is roster.ErrNilClient.
// ErrClosed wraps roster.ErrClosed and ErrStale wraps roster.ErrStale.
//
// # Logs and metrics
//
// WithLogger receives the changes of state of caches and service sets
// (re-listed, stale, restarting, current again) and pickers' ejections,
// never a record per pick. WithMeterProvider (OpenTelemetry's global
// provider by default) receives, observed when collected: instances per
// service by status, each cache's age, staleness, lists, restarts and
// skipped keys, and for each picker its picks and failed calls per instance,
// its ejections and its instances by pickable or ejected. A pick only
// counts in its instance's entry, with metrics on or off. A picker over a
// Cache logs and meters where its Discoverer does, unless given its own
// WithLogger or WithMeterProvider.
package discovery
