// Package etcdtest starts real etcd members for tests: a single member or a
// multi-member cluster on free loopback ports with data in t.TempDir(), ways
// to stop, kill and restart members, a TCP proxy that can cut one client off,
// and the goroutine-leak check every package's TestMain runs.
//
// Everything it starts is closed by t.Cleanup: clients before members.
package etcdtest
