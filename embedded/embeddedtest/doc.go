// Package embeddedtest starts embedded etcd members inside a test process, as
// net/http/httptest starts HTTP servers: a single member or a multi-member
// cluster on free loopback ports with data in t.TempDir(), ways to stop, kill
// and restart members, and to cut one member off from its peers (Isolate)
// while it keeps serving its clients.
//
//	func TestFailover(t *testing.T) {
//		c := embeddedtest.StartCluster(t, 3)
//		cli := c.Client()
//		// ... start what is under test on cli ...
//		c.Leader().Kill() // a crash of the Raft leader
//	}
//
// Everything it starts is closed by t.Cleanup.
package embeddedtest
