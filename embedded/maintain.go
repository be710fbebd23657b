package embedded

import (
	"context"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/storage"
)

const (
	opTimeout     = 5 * time.Second  // one request of the maintenance
	surveyTimeout = 2 * time.Second  // one member's Status
	defragTimeout = 10 * time.Minute // one member's defragmentation, asked over the network
	maxTick       = time.Second      // how often membership and the defragmentation policy are looked at
	dialTimeout   = 2 * time.Second  // a maintenance client's connection
	defaultQuota  = storage.DefaultQuotaBytes
)

// alarmTick is how often alarms are looked at: well inside the shortest
// NOSPACE recovery (it waits 200 ms for each member's compaction to
// settle), so that every member sees, and logs, an alarm the leader then
// disarms, and the leader starts recovering soon after the alarm.
const alarmTick = 100 * time.Millisecond

// maintainer is a member's housekeeping: the defragmentation policy, NOSPACE
// recovery, scheduled snapshots and the logs of membership changes. It owns
// its goroutines; stop ends and waits for them.
type maintainer struct {
	s    *Server
	cfg  config // with the policy's defaults filled in
	log  *slog.Logger
	met  *instruments
	tick time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	defrag  DefragStatus
	nospace NoSpaceStatus
	snaps   SnapshotStatus

	// Owned by the monitor goroutine.
	members         map[uint64]string
	nextDefrag      time.Time
	failStreak      int // defragmentations failed in a row
	leaderWaitSince time.Time
	verdictRev      int64 // store revision when the data was found not to fit
	verdictAt       time.Time
	recovering      bool    // a recovery started and has not ended yet
	defragSpeed     float64 // bytes per second of the last defragmentation; guarded by mu
	recoveryErr     string  // how its last attempt failed, logged once
}

func startMaintainer(s *Server) *maintainer {
	cfg := s.cfg
	cfg.defrag = cfg.defrag.withDefaults()
	if cfg.snapshots != nil {
		sched := cfg.snapshots.withDefaults()
		cfg.snapshots = &sched
	}
	m := &maintainer{
		s:    s,
		cfg:  cfg,
		log:  cfg.log.With(slog.String(KeyName, cfg.name)),
		tick: maxTick,
	}
	if !cfg.defrag.Disabled {
		m.tick = min(maxTick, cfg.defrag.CheckInterval)
	}
	if cfg.handOverAbove == 0 {
		srv := s.etcd.Server
		m.cfg.handOverAbove = time.Duration(srv.Cfg.ElectionTicks) * time.Duration(srv.Cfg.TickMs) * time.Millisecond
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.met = newInstruments(cfg.meter, s)
	m.members = m.memberNames()
	m.nextDefrag = time.Now().Add(cfg.defrag.CheckInterval)
	m.wg.Go(m.monitor)
	if cfg.snapshots != nil {
		m.wg.Go(m.runSnapshots)
	}
	return m
}

// stop ends the maintenance and waits for it: a defragmentation in progress
// cannot be interrupted and is waited for.
func (m *maintainer) stop() {
	if m == nil {
		return
	}
	m.cancel()
	m.wg.Wait()
	m.met.close()
}

// status is the maintenance part of Status.
func (m *maintainer) status() Status {
	if m == nil {
		return Status{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return Status{Defrag: m.defrag, NoSpace: m.nospace, Snapshots: m.snaps}
}

// monitor looks at the member every tick, and at its alarms every
// alarmTick, until the maintainer stops or etcd stops the member.
func (m *maintainer) monitor() {
	t := time.NewTicker(m.tick)
	defer t.Stop()
	alarms := time.NewTicker(min(m.tick, alarmTick))
	defer alarms.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.s.etcd.Server.StopNotify():
			return
		case <-alarms.C:
			m.watchAlarms(false)
			continue
		case <-t.C:
		}
		m.watchMembers()
		if m.watchAlarms(true) {
			continue // the policy waits for the alarm to go
		}
		if !m.cfg.defrag.Disabled && !time.Now().Before(m.nextDefrag) {
			m.maybeDefrag()
		}
	}
}

func (m *maintainer) memberNames() map[uint64]string {
	out := make(map[uint64]string)
	for _, mem := range m.s.etcd.Server.Cluster().Members() {
		out[uint64(mem.ID)] = mem.Name
	}
	return out
}

// watchMembers logs members that joined or left since the last look. A
// member added but not yet started has no name; it is logged when it
// starts.
func (m *maintainer) watchMembers() {
	now := m.memberNames()
	for id, name := range now {
		if was, ok := m.members[id]; name != "" && (!ok || was == "") {
			m.log.Info("member joined", slog.String(KeyMember, hexID(id)), slog.String(KeyMemberName, name),
				slog.Int(KeyMembers, len(now)))
		}
	}
	for id, name := range m.members {
		if _, ok := now[id]; !ok {
			m.log.Info("member left", slog.String(KeyMember, hexID(id)), slog.String(KeyMemberName, name),
				slog.Int(KeyMembers, len(now)))
		}
	}
	m.members = now
}

// self is the member attribute of records about this member.
func (m *maintainer) self() slog.Attr { return slog.String(KeyMember, hexID(m.s.ID())) }

// clientURLs are the client URLs of the started members, this one's
// excluded if others is set and there are others.
func (m *maintainer) clientURLs(others bool) []string {
	var all, rest []string
	for _, mem := range m.s.etcd.Server.Cluster().Members() {
		if len(mem.ClientURLs) == 0 {
			continue
		}
		all = append(all, mem.ClientURLs[0])
		if uint64(mem.ID) != m.s.ID() {
			rest = append(rest, mem.ClientURLs[0])
		}
	}
	if others && len(rest) > 0 {
		return rest
	}
	return all
}

// client is a client of endpoints, configured as the member's own
// (TLS, root credentials).
func (m *maintainer) client(endpoints []string) (*clientv3.Client, error) {
	cfg, err := m.s.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Endpoints = endpoints
	cfg.DialTimeout = dialTimeout
	cfg.Context = m.ctx
	return clientv3.New(cfg)
}
