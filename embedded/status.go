package embedded

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// ErrUnhealthy is returned by Healthy when the member cannot serve
// linearizable reads, or has an alarm raised.
var ErrUnhealthy = errors.New("embedded: member unhealthy")

// ErrNoSpace is wrapped by Healthy's error while a NOSPACE alarm refuses
// every write, and by NoSpaceStatus.Unrecoverable when compaction and
// defragmentation could not bring the data back under the quota.
var ErrNoSpace = errors.New("embedded: NOSPACE: the database reached its backend quota")

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
	DBSize    int64  // bytes of the database file
	// DBSizeInUse is the part of DBSize holding data; the rest is free
	// pages, which only a defragmentation gives back to the file system.
	DBSizeInUse int64
	Quota       int64 // the backend quota: a file this large raises NOSPACE
	Members     int

	Defrag    DefragStatus
	NoSpace   NoSpaceStatus
	Snapshots SnapshotStatus
}

// DefragStatus tells what this member's defragmentation policy did since
// Start. A defragmentation another member asked for over the network (as
// NOSPACE recovery does) is counted by that member.
type DefragStatus struct {
	Count    int // defragmentations that finished
	Failures int
	// Start and End bound the last defragmentation; End is zero while it
	// runs.
	Start, End            time.Time
	SizeBefore, SizeAfter int64  // file size before and after the last one
	Reason                string // why the last one ran
	// AsLeader tells that the member led the cluster when its turn came;
	// HandedOver that it then handed the leadership to a follower first,
	// because its defragmentation was expected to block it for longer than
	// an election timeout.
	AsLeader, HandedOver bool
	Err                  error // the last failure; nil once one succeeds
	// Waiting says why a defragmentation the thresholds call for has not
	// started (another member is defragmenting, the cluster is unhealthy,
	// the leader lets its followers go first); empty when none is due.
	Waiting string
}

// NoSpaceStatus tells of the cluster's NOSPACE alarm as this member sees it.
type NoSpaceStatus struct {
	Alarm bool      // raised: the cluster refuses every write
	Since time.Time // when this member saw it raised
	// Recoveries counts alarms this member recovered: the Raft leader
	// compacts, has every member defragmented and disarms the alarm.
	Recoveries    int
	LastRecovered time.Time
	// Unrecoverable, set on the member that tried, wraps ErrNoSpace: the
	// data does not fit under the quota even after compaction and
	// defragmentation. The alarm stays raised; deleting keys (allowed under
	// NOSPACE) makes the member try again, as does a larger quota.
	Unrecoverable error
}

// SnapshotStatus tells what the snapshot schedule (WithSnapshots) did since
// Start.
type SnapshotStatus struct {
	Count    int // snapshots written
	Failures int
	Last     time.Time // when the last one was written
	LastPath string
	LastSize int64
	Err      error // the last failure; nil once one succeeds
}

// Healthy returns nil when the member serves linearizable reads: it knows a
// leader, has no alarm raised, and a read barrier through Raft completes
// before ctx ends. While a NOSPACE alarm is raised the error wraps ErrNoSpace
// too, and says whether the data was found not to fit.
func (s *Server) Healthy(ctx context.Context) error {
	srv := s.etcd.Server
	if srv.Leader() == 0 {
		return fmt.Errorf("%w: %q has no leader", ErrUnhealthy, s.cfg.name)
	}
	for _, a := range srv.Alarms() {
		if a.Alarm != pb.AlarmType_NOSPACE {
			return fmt.Errorf("%w: %q has alarm %v", ErrUnhealthy, s.cfg.name, a.Alarm)
		}
	}
	if len(srv.Alarms()) > 0 {
		if err := s.maint.status().NoSpace.Unrecoverable; err != nil {
			return fmt.Errorf("%w: %q: %w", ErrUnhealthy, s.cfg.name, err)
		}
		how := "the Raft leader is recovering it"
		if s.cfg.nospace.Disabled {
			how = "recovery is off: compact, defragment and disarm by hand"
		}
		return fmt.Errorf("%w: %q: %w: writes are refused (%s)", ErrUnhealthy, s.cfg.name, ErrNoSpace, how)
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

// Status reports this member's Raft and storage state, and what its
// maintenance (defragmentation, NOSPACE recovery, snapshots) did.
func (s *Server) Status() Status {
	srv := s.etcd.Server
	st := s.maint.status()
	st.ID = s.ID()
	st.Name = s.cfg.name
	st.Leader = s.Leader()
	st.IsLeader = s.IsLeader()
	st.RaftTerm = srv.Term()
	st.RaftIndex = srv.CommittedIndex()
	st.DBSize = srv.Backend().Size()
	st.DBSizeInUse = srv.Backend().SizeInUse()
	st.Quota = s.quota()
	st.Members = len(srv.Cluster().Members())
	st.NoSpace.Alarm = false
	for _, a := range srv.Alarms() {
		st.NoSpace.Alarm = st.NoSpace.Alarm || a.Alarm == pb.AlarmType_NOSPACE
	}
	return st
}

// quota is the backend quota in force: etcd's default when none was set.
func (s *Server) quota() int64 {
	if q := s.etcd.Server.Cfg.QuotaBackendBytes; q > 0 {
		return q
	}
	return defaultQuota
}
