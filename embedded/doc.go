// Package embedded runs etcd inside your process: one binary can be its own
// coordination service, as a single member or as one of several members
// forming a real Raft cluster, until you point the SDK at an etcd cluster run
// elsewhere. Everything else in roster takes a *clientv3.Client, so code
// written against an embedded member runs unchanged against any etcd.
//
// # One member
//
// Start with no options gives a single-member cluster on free loopback ports
// with its data in a temporary directory that Close removes. It returns once
// the member serves clients, or with an error when ctx ends first.
//
//	srv, err := embedded.Start(ctx)
//	if err != nil { ... }
//	defer srv.Close()
//	cli, err := srv.Client() // configured for this member: endpoint, TLS, credentials
//	if err != nil { ... }
//	defer cli.Close()
//
// WithDataDir keeps the data: a member started again on the same directory
// recovers every key. WithClientAddr and WithPeerAddr fix the addresses; a
// port that is taken fails with ErrPortInUse. etcd's logs, and this
// package's records of state changes (a member joined or left, a
// defragmentation, a NOSPACE alarm, a snapshot), are discarded unless you
// pass WithLogger (slog) or WithZapLogger.
//
// # A cluster of processes
//
// Three processes, each started with its own name and the same member list
// and token, bootstrap a cluster (etcd's static bootstrap). Each Start returns
// once a quorum of them is up. On one host, for a try:
//
//	members := []embedded.Member{
//		{Name: "a", PeerURL: "http://127.0.0.1:2380"},
//		{Name: "b", PeerURL: "http://127.0.0.1:2381"},
//		{Name: "c", PeerURL: "http://127.0.0.1:2382"},
//	}
//	srv, err := embedded.Start(ctx,
//		embedded.WithName(name), // "a", "b" or "c"
//		embedded.WithDataDir(dir),
//		embedded.WithClientAddr(clientAddr), // e.g. 127.0.0.1:2379, :2479, :2579
//		embedded.WithCluster("my-app", members...))
//
// Across hosts, listen on a routable address and protect it with TLS (see
// below): the member's peer address defaults to its entry in the list.
// StartCluster does all of this inside one process, for tests and demos.
//
// Join adds a member to a running cluster through a client of it (etcd's
// "member add", then a start that fetches the cluster's state); Leave removes
// a member through its peers and stops it. A member removed by others stops
// too (Done), and Removed tells that from a failure. A member restarted with
// Start on its data dir rejoins with everything it had. Status, Members,
// Leader and Healthy (the member serves linearizable reads) tell how it is
// doing.
//
// # Running for months
//
// etcd's database file never shrinks by itself, and the backend quota counts
// the file, free pages included: a member whose keys churn reaches NOSPACE,
// and then refuses every write, however little it holds. Each member
// therefore looks after itself (see DefragPolicy and NoSpaceRecovery):
//
//   - it defragments when at least 64 MiB (or a sixteenth of the quota) of
//     its file is unused and either at most half the file holds data or the
//     file has reached 80% of the quota; only while every member answers,
//     one member at a time (they take turns through a lease-held key,
//     /roster/embedded/defrag), the Raft leader last;
//   - the Raft leader recovers a NOSPACE alarm: it compacts, has every member
//     defragmented and disarms the alarm, or, when the data itself does not
//     fit, says so in Healthy, Status and the log and keeps refusing writes
//     rather than disarming into the next alarm;
//   - with WithSnapshots it writes a snapshot on a schedule, keeping the
//     newest few; a failed one is reported, never fatal.
//
// Status tells what each did: the last defragmentation's time and sizes, the
// alarm, the snapshots. WithMeterProvider records the same as OpenTelemetry
// metrics; WithMetricsAddr serves etcd's own Prometheus metrics on a
// listener of their own.
//
// # Backups
//
// Snapshot writes a consistent copy of the data to an io.Writer, in the format
// "etcdctl snapshot save" writes (a bolt database and its SHA-256), and checks
// the hash as it goes. Restore makes a new data dir from such a file, checking
// the hash; Start a member on it with the same name, data dir and peer
// address. Restored revisions move one million past the old ones, so a watcher
// resuming from an old revision is told to re-list instead of silently missing
// changes.
//
// # Security
//
// A listener on an address other than loopback without TLS is refused with
// ErrInsecureListen unless WithInsecureNonLoopback says that is intended:
// anyone reaching it could read and write every key. WithClientTLS and
// WithPeerTLS take certificate files; TLSFiles.ClientCertAuth demands client
// certificates signed by the trusted CA. WithAuth turns on etcd's
// authentication with a root user on first start; Server.Client logs in as
// root, clients without credentials are refused.
//
// # Options and defaults
//
// Zero values mean the default everywhere: WithQuotaBackendBytes(0) is etcd's
// quota, DefragPolicy{} the documented thresholds, a nil logger discards, a nil
// MeterProvider is OpenTelemetry's global one. Negative or out-of-range values
// are refused by Start with an error wrapping ErrInvalidConfig (and
// roster.ErrInvalidOption) that names the option.
//
// Auto-compaction is on: history older than DefaultCompactionRetention (10
// minutes) is compacted away, so the database does not grow without bound; a
// watcher further behind than that must re-list. WithAutoCompaction and
// WithRevisionCompaction change it. The backend quota is etcd's 2 GiB unless
// WithQuotaBackendBytes says otherwise. Raft timings are etcd's (100 ms
// heartbeat, 1 s election timeout) unless WithTimings says otherwise.
//
// Close cuts open client streams instead of waiting for them and frees the
// ports; Abort stops a member as a crash would, for fault tests.
package embedded
