package embedded

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
)

// NoSpaceRecovery says what a member does about a NOSPACE alarm, raised when
// a member's database file reaches the backend quota: from then on the
// cluster refuses every write (registrations, locks and campaigns included)
// until the alarm is disarmed. Reads, deletes, compaction and lease
// keep-alives still work.
//
// By default the Raft leader recovers as etcd's maintenance guide does by
// hand: it compacts to the current revision (watchers behind it must
// re-list), has every member defragmented (its followers one at a time, then
// itself), and disarms the alarm if every member's file is then at most 80%
// of its quota, so that the next writes do not raise it again at once. If
// that leaves too much, the data does not fit: the alarm stays raised, the
// member says so in Healthy, Status.NoSpace.Unrecoverable and its log, and
// tries again only after keys were deleted. A larger quota (a restart with
// WithQuotaBackendBytes) or fewer keys is the way out.
type NoSpaceRecovery struct {
	Disabled bool // leave the alarm to the operator
	// KeepHistory compacts no further than the auto-compaction retention
	// (WithRevisionCompaction's count; with a time window, what etcd's
	// compactor already did): an alarm that only compacting the retained
	// history would cure stays raised.
	KeepHistory bool
}

// fitRatio is the share of its quota a member's file may fill for the alarm
// to be disarmed.
const fitRatio = 0.8

// watchAlarms logs NOSPACE alarms raised and cleared, and has the leader
// recover from them: at once when it sees one raised, and again at each
// tick for as long as it stays (retry) if the recovery failed or found the
// data too large. It reports whether one is raised.
func (m *maintainer) watchAlarms(retry bool) bool {
	srv := m.s.etcd.Server
	nospace := m.nospaceAlarms()
	m.mu.Lock()
	was := m.nospace.Alarm
	m.nospace.Alarm = len(nospace) > 0
	switch {
	case m.nospace.Alarm && !was:
		m.nospace.Since = time.Now()
	case !m.nospace.Alarm && was:
		m.nospace.Unrecoverable = nil
	}
	m.mu.Unlock()
	switch {
	case len(nospace) > 0 && !was:
		m.log.Warn("NOSPACE alarm raised: writes are refused", slog.String(KeyMember, hexID(nospace[0].MemberID)),
			slog.Int64(KeySize, srv.Backend().Size()), slog.Int64(KeyQuota, m.s.quota()))
	case len(nospace) == 0 && was:
		m.log.Info("NOSPACE alarm cleared", slog.Int64(KeySize, srv.Backend().Size()))
		m.verdictRev, m.recovering, m.recoveryErr = 0, false, ""
	}
	if len(nospace) == 0 {
		return false
	}
	if !m.cfg.nospace.Disabled && (retry || !was) && m.s.IsLeader() && m.mayRecover() {
		m.recoverNoSpace()
	}
	return true
}

// mayRecover keeps a member that found the data too large from trying again
// and again: only after keys were deleted (the revision moved), and not more
// often than every ten ticks of the monitor.
func (m *maintainer) mayRecover() bool {
	if m.verdictRev == 0 {
		return true
	}
	return m.s.etcd.Server.KV().Rev() != m.verdictRev && time.Since(m.verdictAt) >= 10*m.tick
}

// nospaceAlarms returns the NOSPACE alarms raised, one per member that
// reached its quota.
func (m *maintainer) nospaceAlarms() []*pb.AlarmMember {
	var out []*pb.AlarmMember
	for _, a := range m.s.etcd.Server.Alarms() {
		if a.Alarm == pb.AlarmType_NOSPACE {
			out = append(out, a)
		}
	}
	return out
}

// recoverNoSpace compacts, defragments every member and disarms, as
// NoSpaceRecovery describes.
func (m *maintainer) recoverNoSpace() {
	ctx := m.ctx
	cli, err := m.client(m.clientURLs(false))
	if err != nil {
		m.recoveryFailed("no client of the cluster", slog.Any(KeyErr, err))
		return
	}
	defer cli.Close()
	// A member that took the policy's lock before the alarm finishes first:
	// no new lock can be taken while writes are refused.
	tctx, cancel := context.WithTimeout(ctx, opTimeout)
	held, err := cli.Get(tctx, defragLockKey)
	cancel()
	if err != nil || len(held.Kvs) > 0 {
		return
	}
	rev := m.s.etcd.Server.KV().Rev()
	if !m.recovering {
		m.recovering = true
		m.log.Info("NOSPACE recovery started", slog.Int64(KeyRevision, rev))
	}
	start := time.Now()
	target := m.compactionTarget(rev)
	if target > 0 {
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := cli.Compact(tctx, target, clientv3.WithCompactPhysical())
		cancel()
		if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			m.recoveryFailed("compaction failed", slog.Int64(KeyRevision, target), slog.Any(KeyErr, err))
			return
		}
	}
	if err := m.defragAll(ctx, cli); err != nil {
		m.recoveryFailed("defragmentation failed", slog.Any(KeyErr, err))
		return
	}
	largest, err := m.largest(ctx, cli)
	if err != nil {
		m.recoveryFailed("cannot check the members' sizes", slog.Any(KeyErr, err))
		return
	}
	size, quota := largest.st.DbSize, quotaOf(largest.st.DbSizeQuota)
	if float64(size) > fitRatio*float64(quota) {
		how := "compaction to revision " + strconv.FormatInt(target, 10)
		if target == 0 {
			how = "the retained history"
		}
		verdict := fmt.Errorf("%w: after %s and defragmentation the data of member %s takes %d bytes, more than %.0f%% of its quota of %d bytes: delete keys or raise the quota",
			ErrNoSpace, how, largest.name, size, fitRatio*100, quota)
		m.mu.Lock()
		m.nospace.Unrecoverable = verdict
		m.mu.Unlock()
		// The revision the attempt started from: a delete made during it
		// makes the next look try again.
		m.verdictRev, m.verdictAt = rev, time.Now()
		m.recovering, m.recoveryErr = false, ""
		m.met.recovered(ctx, false)
		m.log.Error("NOSPACE unrecoverable: the data does not fit under the quota", slog.Int64(KeySize, size),
			slog.Int64(KeyQuota, quota), slog.String(KeyMemberName, largest.name), slog.Int64(KeyRevision, target),
			slog.Any(KeyErr, verdict))
		return
	}
	// Every alarm raised by now, not only those seen at the start: a write
	// applied on another member before the first alarm can raise its own
	// a moment later, and the sizes just checked cover it too.
	if err := m.disarm(ctx, cli, m.nospaceAlarms()); err != nil {
		m.recoveryFailed("cannot disarm the alarm", slog.Any(KeyErr, err))
		return
	}
	m.mu.Lock()
	m.nospace.Recoveries++
	m.nospace.LastRecovered = time.Now()
	m.nospace.Unrecoverable = nil
	m.mu.Unlock()
	m.recovering, m.recoveryErr = false, ""
	m.met.recovered(ctx, true)
	m.log.Info("NOSPACE recovered", slog.Int64(KeyRevision, target), slog.Duration(KeyTook, time.Since(start)),
		slog.Int64(KeySize, size), slog.Int64(KeyQuota, quota))
}

// recoveryFailed logs a failed step of a recovery that will be tried again
// at the next look, once for as long as it fails the same way.
func (m *maintainer) recoveryFailed(step string, attrs ...any) {
	msg := fmt.Sprint(step, attrs)
	if msg == m.recoveryErr {
		return
	}
	m.recoveryErr = msg
	m.log.Warn("NOSPACE recovery: "+step+"; trying again", attrs...)
}

// compactionTarget is the revision to compact to: the current one, or with
// KeepHistory the oldest the retention keeps (0: none beyond what
// auto-compaction did).
func (m *maintainer) compactionTarget(rev int64) int64 {
	if !m.cfg.nospace.KeepHistory {
		return rev
	}
	if m.cfg.compaction.mode == "revision" {
		if n, err := strconv.ParseInt(m.cfg.compaction.retention, 10, 64); err == nil && rev-n > 0 {
			return rev - n
		}
	}
	return 0
}

// defragAll defragments every member, one at a time: the others first, over
// the network, then this one.
func (m *maintainer) defragAll(ctx context.Context, cli *clientv3.Client) error {
	self := m.s.ID()
	members := m.s.etcd.Server.Cluster().Members()
	slices.SortFunc(members, func(a, b *membership.Member) int { return cmp.Compare(a.ID, b.ID) })
	for _, mem := range members {
		if uint64(mem.ID) == self || len(mem.ClientURLs) == 0 {
			continue
		}
		url := mem.ClientURLs[0]
		if err := m.settled(ctx, func() (int64, error) {
			tctx, cancel := context.WithTimeout(ctx, surveyTimeout)
			defer cancel()
			st, err := cli.Status(tctx, url)
			if err != nil {
				return 0, err
			}
			return st.DbSizeInUse, nil
		}); err != nil {
			return fmt.Errorf("member %s: %w", mem.Name, err)
		}
		tctx, cancel := context.WithTimeout(ctx, defragTimeout)
		_, err := cli.Defragment(tctx, url)
		cancel()
		if err != nil {
			return fmt.Errorf("member %s: %w", mem.Name, err)
		}
	}
	be := m.s.etcd.Server.Backend()
	if err := m.settled(ctx, func() (int64, error) { return be.SizeInUse(), nil }); err != nil {
		return err
	}
	return m.defragSelf("NOSPACE recovery", m.s.IsLeader(), false)
}

// settled waits until a member's in-use size stops shrinking: compaction
// frees pages in batches after it returns, and a defragmentation before it
// finished would give back less.
func (m *maintainer) settled(ctx context.Context, inUse func() (int64, error)) error {
	const (
		every = 200 * time.Millisecond
		limit = 30 * time.Second
	)
	last, err := inUse()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		n, err := inUse()
		if err != nil {
			return err
		}
		if n >= last {
			return nil
		}
		last = n
	}
	return nil
}

// largest is the member whose file is fullest relative to its quota.
func (m *maintainer) largest(ctx context.Context, cli *clientv3.Client) (memberState, error) {
	states, err := m.survey(ctx, cli)
	if err != nil {
		return memberState{}, err
	}
	fill := func(s memberState) float64 { return float64(s.st.DbSize) / float64(quotaOf(s.st.DbSizeQuota)) }
	return slices.MaxFunc(states, func(a, b memberState) int {
		switch fa, fb := fill(a), fill(b); {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}), nil
}

// disarm clears every NOSPACE alarm.
func (m *maintainer) disarm(ctx context.Context, cli *clientv3.Client, alarms []*pb.AlarmMember) error {
	for _, a := range alarms {
		tctx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := cli.AlarmDisarm(tctx, &clientv3.AlarmMember{MemberID: a.MemberID, Alarm: a.Alarm})
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
