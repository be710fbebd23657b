// Package faults is roster's fault suite. It has no API: everything is in
// its tests.
//
// The suite runs registrars, discovery caches, election candidates and
// mutex holders on several clients of a three-member etcd cluster, and
// breaks the cluster under them, one fault at a time: the Raft leader
// killed, a member restarted on its data, a client cut off past its lease
// TTL, a compaction while a client is cut off, the whole cluster stopped and
// started again. After each fault it waits, with a deadline, until every
// cache shows what etcd holds, every registrar's instances are back under a
// live lease, and the election and the mutex make progress again.
//
// Throughout, every fenced write (Leadership.Do, Hold.Txn) and every
// holding is recorded with the times it was invoked and returned. At the
// end the histories are checked mechanically against what etcd kept: no two
// holders that did not observe a loss overlap in time; in commit order the
// accepted writes' fencing tokens never go backwards, so no two holders'
// writes interleave; each accepted write saw, in its own transaction, its
// holder's key as the oldest; every acknowledged write survived and every
// refused one is absent.
//
// The cluster is an interface with two implementations: members embedded in
// the test process (package embeddedtest), and member processes the SDK
// reaches only over the network: roster-etcd, or etcd's own server built at
// the version in go.mod. Both run the same suite. This module also holds the
// tests that need the server's internals, such as a member cut off from its
// peers while it keeps serving its clients.
//
//	go test -race -run TestFaults ./faults                       # embedded, about a minute
//	ROSTER_SOAK=1 go test -run TestFaults -timeout 60m ./faults  # more rounds (ROSTER_SOAK_ROUNDS, default 10)
//	ROSTER_EXTERNAL=1 go test -run TestFaultsExternal ./faults   # roster-etcd processes
//	scripts/external-cluster.sh                                  # etcd's own server processes
package faults
