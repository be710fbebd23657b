// Package etcdtest starts real etcd members for the client packages' tests:
// each member is a roster-etcd process, built from the embedded module of this
// repository (or taken from ROSTER_ETCD_BIN), so these tests reach etcd only
// over the network and the client module needs no etcd server code.
//
// It has single members and multi-member clusters on free loopback ports with
// data in t.TempDir(); faults on a member process (Stop, Kill, Pause past a
// TTL, Restart on its data); a TCP proxy between a client and etcd that can
// reset its connections (Cut), hold every byte with the connections left open
// (Pause, a black hole), or delay them (Delay); and the goroutine-leak check
// every package's TestMain runs.
//
// Everything it starts is stopped by t.Cleanup: clients before members.
package etcdtest
