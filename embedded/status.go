package embedded

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnhealthy is returned by Healthy when the member cannot serve
// linearizable reads.
var ErrUnhealthy = errors.New("embedded: member unhealthy")

// MemberInfo describes one member of the cluster as this member sees it.
type MemberInfo struct {
	ID         uint64
	Name       string // empty for a member added but not yet started
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// Status is this member's view of itself and its cluster.
type Status struct {
	ID        uint64
	Name      string
	Leader    uint64 // 0 while there is no leader
	IsLeader  bool
	RaftTerm  uint64
	RaftIndex uint64 // committed index
	DBSize    int64  // bytes
	Members   int
}

// Healthy returns nil when the member serves linearizable reads: it knows a
// leader, has no alarm raised, and a read barrier through Raft completes
// before ctx ends.
func (s *Server) Healthy(ctx context.Context) error {
	srv := s.etcd.Server
	if srv.Leader() == 0 {
		return fmt.Errorf("%w: %q has no leader", ErrUnhealthy, s.cfg.name)
	}
	if alarms := srv.Alarms(); len(alarms) > 0 {
		return fmt.Errorf("%w: %q has alarm %v", ErrUnhealthy, s.cfg.name, alarms[0].Alarm)
	}
	if err := srv.LinearizableReadNotify(ctx); err != nil {
		return fmt.Errorf("%w: %q: linearizable read: %v", ErrUnhealthy, s.cfg.name, err)
	}
	return nil
}

// Members lists the cluster's members as this member knows them.
func (s *Server) Members() []MemberInfo {
	ms := s.etcd.Server.Cluster().Members()
	out := make([]MemberInfo, len(ms))
	for i, m := range ms {
		out[i] = MemberInfo{
			ID:         uint64(m.ID),
			Name:       m.Name,
			PeerURLs:   append([]string(nil), m.PeerURLs...),
			ClientURLs: append([]string(nil), m.ClientURLs...),
			IsLearner:  m.IsLearner,
		}
	}
	return out
}

// Leader is the ID of the cluster's Raft leader, or 0 while there is none.
func (s *Server) Leader() uint64 { return uint64(s.etcd.Server.Leader()) }

// IsLeader reports whether this member is the Raft leader.
func (s *Server) IsLeader() bool { return s.Leader() == s.ID() }

// Status reports this member's Raft and storage state.
func (s *Server) Status() Status {
	srv := s.etcd.Server
	return Status{
		ID:        s.ID(),
		Name:      s.cfg.name,
		Leader:    s.Leader(),
		IsLeader:  s.IsLeader(),
		RaftTerm:  srv.Term(),
		RaftIndex: srv.CommittedIndex(),
		DBSize:    srv.Backend().Size(),
		Members:   len(srv.Cluster().Members()),
	}
}
