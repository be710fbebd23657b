package embedded

import (
	"context"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
)

// etcd's own graceful stop hands leadership to a peer and waits up to its
// request timeout (about 7 s) for that. When the peers are stopping too, as
// when a whole cluster of embedded members shuts down together, nobody
// takes over and every shutdown waits out that timeout. handOver makes the
// same attempt with a budget of one election timeout; a live peer takes
// over in a few heartbeats, and a member that could not hand over stops
// as a crashed leader would, which its peers then resolve by an election.

// handOver moves leadership to another voting member if this member leads,
// trying each in turn within the budget. It reports whether this member
// still leads afterwards.
func (s *Server) handOver() (stillLeader bool) {
	srv := s.etcd.Server
	self := srv.MemberID()
	if types.ID(srv.Lead()) != self {
		return false
	}
	var peers []types.ID
	for _, m := range srv.Cluster().Members() {
		if m.ID != self && !m.IsLearner {
			peers = append(peers, m.ID)
		}
	}
	if len(peers) == 0 {
		return false // a single voting member: there is nobody to hand over to
	}
	budget := time.Duration(srv.Cfg.ElectionTicks) * time.Duration(srv.Cfg.TickMs) * time.Millisecond
	for _, p := range peers {
		ctx, cancel := context.WithTimeout(context.Background(), budget/time.Duration(len(peers)))
		err := srv.MoveLeader(ctx, uint64(self), uint64(p))
		cancel()
		if err == nil {
			return false
		}
	}
	return types.ID(srv.Lead()) == self
}
