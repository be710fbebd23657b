package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Defaults of DefragPolicy.
const (
	DefaultDefragCheckInterval = 10 * time.Second
	DefaultDefragMinFreeBytes  = 64 << 20
	DefaultDefragMaxInUseRatio = 0.5
	DefaultDefragQuotaRatio    = 0.8
)

// DefragPolicy says when a member defragments its database, giving the
// pages compaction freed back to the file system. etcd's bolt file never
// shrinks by itself, and the backend quota counts the file, free pages
// included, so without defragmentation a member whose keys churn reaches
// NOSPACE however little it holds.
//
// A member defragments itself when at least MinFreeBytes of its file is
// unused and either at most MaxInUseRatio of the file holds data, or the
// file has grown to QuotaRatio of the backend quota. It does so only while
// every member of the cluster answers and agrees on a leader, no alarm is
// raised, and no other member is defragmenting: a defragmentation blocks the
// member's reads and writes while it copies the data, and two at once could
// leave a three-member cluster without a working majority. The Raft leader
// lets its followers go first. A leader whose defragmentation is expected to
// block it for longer than an election timeout (judged by the speed of its
// last one) hands its leadership to a follower first, so that lease renewals
// are not refused meanwhile; a shorter one costs less in place than a
// leadership transfer, during which proposals forwarded by followers are
// dropped and wait out their clients' timeouts.
//
// Zero fields take the defaults: a look every 10 s (two counters read, no
// request, unless the thresholds are met), 64 MiB unused (or a sixteenth of
// the quota, if smaller, so that small quotas are served too), at most half
// the file in use, or 80% of the quota, the point past which etcd's own
// operators are told to act. Negative values, or ratios above 1, are an
// error wrapping ErrInvalidConfig.
type DefragPolicy struct {
	Disabled      bool // no defragmentation; the file only ever grows
	CheckInterval time.Duration
	MinFreeBytes  int64
	MaxInUseRatio float64
	QuotaRatio    float64
}

func (p DefragPolicy) validate() error {
	switch {
	case p.CheckInterval < 0:
		return fmt.Errorf("%w: defrag CheckInterval %v is negative", ErrInvalidConfig, p.CheckInterval)
	case p.MinFreeBytes < 0:
		return fmt.Errorf("%w: defrag MinFreeBytes %d is negative", ErrInvalidConfig, p.MinFreeBytes)
	case p.MaxInUseRatio < 0 || p.MaxInUseRatio > 1:
		return fmt.Errorf("%w: defrag MaxInUseRatio %v is not within [0, 1]", ErrInvalidConfig, p.MaxInUseRatio)
	case p.QuotaRatio < 0 || p.QuotaRatio > 1:
		return fmt.Errorf("%w: defrag QuotaRatio %v is not within [0, 1]", ErrInvalidConfig, p.QuotaRatio)
	}
	return nil
}

// withDefaults fills in zero fields.
func (p DefragPolicy) withDefaults() DefragPolicy {
	if p.CheckInterval == 0 {
		p.CheckInterval = DefaultDefragCheckInterval
	}
	if p.MaxInUseRatio == 0 {
		p.MaxInUseRatio = DefaultDefragMaxInUseRatio
	}
	if p.QuotaRatio == 0 {
		p.QuotaRatio = DefaultDefragQuotaRatio
	}
	return p
}

// due says whether a file of size bytes, inUse of them holding data, under
// quota calls for a defragmentation, and why.
func (p DefragPolicy) due(size, inUse, quota int64) (string, bool) {
	if size <= 0 {
		return "", false
	}
	minFree := p.MinFreeBytes
	if minFree == 0 {
		minFree = min(DefaultDefragMinFreeBytes, quota/16)
	}
	free := size - inUse
	if free < minFree {
		return "", false
	}
	if float64(inUse) <= p.MaxInUseRatio*float64(size) {
		return fmt.Sprintf("%d of %d bytes unused", free, size), true
	}
	if float64(size) >= p.QuotaRatio*float64(quota) {
		return fmt.Sprintf("file of %d bytes near the quota of %d, %d unused", size, quota, free), true
	}
	return "", false
}

// defragLockKey is held, under a lease, by the member defragmenting; its
// value is the member's name.
const defragLockKey = "/roster/embedded/defrag"

// lockTTL is the lease of defragLockKey, in seconds: a member that died while
// holding it blocks the others this long at most. Its keep-alives go through
// the other members, so a defragmentation of any length keeps it.
const lockTTL = 30

// maybeDefrag runs one turn of the policy.
func (m *maintainer) maybeDefrag() {
	pol := m.cfg.defrag
	next := pol.CheckInterval
	defer func() { m.nextDefrag = time.Now().Add(next) }()
	srv := m.s.etcd.Server
	be := srv.Backend()
	quota := m.s.quota()
	reason, ok := pol.due(be.Size(), be.SizeInUse(), quota)
	if !ok {
		m.setWaiting("")
		m.leaderWaitSince = time.Time{}
		return
	}
	var err error
	if len(srv.Cluster().Members()) == 1 {
		err = m.defragSelf(reason, true, false)
	} else {
		var waiting string
		waiting, err = m.coordinatedDefrag(reason)
		m.setWaiting(waiting)
	}
	// Failures space out the attempts: a defragmentation needs room for a
	// copy of the data, and a full disk stays full for a while.
	if err != nil {
		m.failStreak++
		next = min(pol.CheckInterval<<min(m.failStreak, 10), time.Hour)
	} else {
		m.failStreak = 0
	}
}

func (m *maintainer) setWaiting(why string) {
	m.mu.Lock()
	m.defrag.Waiting = why
	m.mu.Unlock()
}

// coordinatedDefrag defragments this member of a multi-member cluster if
// the cluster is healthy and nobody else is at it. It returns why it waits,
// or the defragmentation's error.
func (m *maintainer) coordinatedDefrag(reason string) (string, error) {
	ctx := m.ctx
	cli, err := m.client(m.clientURLs(false))
	if err != nil {
		return "no client of the cluster: " + err.Error(), nil
	}
	defer cli.Close()
	states, err := m.survey(ctx, cli)
	if err != nil {
		return err.Error(), nil
	}
	if err := m.healthy(states); err != nil {
		return err.Error(), nil
	}
	self := m.s.ID()
	lead := states[0].st.Leader
	if lead != self {
		m.leaderWaitSince = time.Time{}
	}
	if holder, ok := lockHolder(ctx, cli); ok {
		return holder + " is defragmenting", nil
	}
	if lead == self {
		// Followers see their free pages a commit or two later than the
		// leader may: it gives them a moment before judging none is due.
		if m.leaderWaitSince.IsZero() {
			m.leaderWaitSince = time.Now()
		}
		waited := time.Since(m.leaderWaitSince)
		if waited < max(time.Second, 3*m.cfg.defrag.CheckInterval) {
			return "leader: followers go first", nil
		}
		if name, ok := m.followerDue(states); ok && waited < m.leaderPatience() {
			return fmt.Sprintf("leader: follower %s defragments first", name), nil
		}
	}

	// The lock goes through the other members: this one stops answering
	// while it defragments, and its lease must not expire meanwhile.
	lcli, err := m.client(m.clientURLs(true))
	if err != nil {
		return "no client of the other members: " + err.Error(), nil
	}
	defer lcli.Close()
	sess, err := concurrency.NewSession(lcli, concurrency.WithTTL(lockTTL), concurrency.WithContext(ctx))
	if err != nil {
		return "no lease for the defragmentation lock: " + err.Error(), nil
	}
	defer func() {
		// Revoking deletes the lock key at once, even after Close began.
		sess.Orphan()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		lcli.Revoke(rctx, sess.Lease())
		cancel()
	}()
	tctx, cancel := context.WithTimeout(ctx, opTimeout)
	resp, err := lcli.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(defragLockKey), "=", 0)).
		Then(clientv3.OpPut(defragLockKey, m.s.cfg.name, clientv3.WithLease(sess.Lease()))).
		Else(clientv3.OpGet(defragLockKey)).
		Commit()
	cancel()
	if err != nil {
		return "cannot take the defragmentation lock: " + err.Error(), nil
	}
	if !resp.Succeeded {
		return holderOf(resp.Responses[0].GetResponseRange().Kvs) + " is defragmenting", nil
	}
	asLeader, handedOver := m.s.IsLeader(), false
	if asLeader && m.expectedDefrag(m.s.etcd.Server.Backend().SizeInUse()) >= m.cfg.handOverAbove {
		if err := m.handOverTo(ctx, m.transferees(states)); err != nil {
			return "leader: cannot hand over before defragmenting: " + err.Error(), nil
		}
		handedOver = true
	}
	select {
	case <-sess.Done():
		return "lost the defragmentation lock", nil
	default:
	}
	m.leaderWaitSince = time.Time{}
	return "", m.defragSelf(reason, asLeader, handedOver)
}

// assumedDefragSpeed is the copying speed a member expects before it has
// measured its own: a conservative one, for a disk that writes the new file
// at 64 MiB/s.
const assumedDefragSpeed = 64 << 20

// expectedDefrag estimates how long defragmenting inUse bytes takes, from
// this member's last defragmentation of at least 1 MiB.
func (m *maintainer) expectedDefrag(inUse int64) time.Duration {
	m.mu.Lock()
	speed := m.defragSpeed
	m.mu.Unlock()
	if speed <= 0 {
		speed = assumedDefragSpeed
	}
	return time.Duration(float64(inUse) / speed * float64(time.Second))
}

// lockHolder names the member holding the defragmentation lock, if one
// does: a look before taking a lease for a lock that is busy anyway.
func lockHolder(ctx context.Context, cli *clientv3.Client) (string, bool) {
	tctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := cli.Get(tctx, defragLockKey)
	if err != nil || len(resp.Kvs) == 0 {
		return "", false
	}
	return holderOf(resp.Kvs), true
}

func holderOf(kvs []*mvccpb.KeyValue) string {
	if len(kvs) == 0 {
		return "another member"
	}
	return "member " + string(kvs[0].Value)
}

// leaderPatience bounds how long a leader lets followers go first: a
// follower that does not run this policy (a plain etcd member) would
// otherwise keep it waiting for ever.
func (m *maintainer) leaderPatience() time.Duration {
	return max(time.Minute, 10*m.cfg.defrag.CheckInterval)
}

// followerDue names a follower that the policy would defragment.
func (m *maintainer) followerDue(states []memberState) (string, bool) {
	for _, s := range states {
		if s.id == m.s.ID() {
			continue
		}
		if _, ok := m.cfg.defrag.due(s.st.DbSize, s.st.DbSizeInUse, quotaOf(s.st.DbSizeQuota)); ok {
			return s.name, true
		}
	}
	return "", false
}

// transferees are the voting followers to hand leadership to, those that
// will not want a defragmentation of their own first.
func (m *maintainer) transferees(states []memberState) []uint64 {
	var done, due []uint64
	for _, s := range states {
		if s.id == m.s.ID() || s.learner {
			continue
		}
		if _, ok := m.cfg.defrag.due(s.st.DbSize, s.st.DbSizeInUse, quotaOf(s.st.DbSizeQuota)); ok {
			due = append(due, s.id)
		} else {
			done = append(done, s.id)
		}
	}
	return append(done, due...)
}

// handOverTo moves leadership to the first of ids that takes it, each given
// one election timeout.
func (m *maintainer) handOverTo(ctx context.Context, ids []uint64) error {
	srv := m.s.etcd.Server
	budget := time.Duration(srv.Cfg.ElectionTicks) * time.Duration(srv.Cfg.TickMs) * time.Millisecond
	err := fmt.Errorf("no voting follower")
	for _, id := range ids {
		tctx, cancel := context.WithTimeout(ctx, budget)
		err = srv.MoveLeader(tctx, uint64(srv.MemberID()), id)
		cancel()
		if err == nil || !m.s.IsLeader() {
			return nil
		}
	}
	return err
}

// defragSelf defragments this member's backend, recording and logging it.
func (m *maintainer) defragSelf(reason string, asLeader, handedOver bool) error {
	srv := m.s.etcd.Server
	be := srv.Backend()
	before, inUse := be.Size(), be.SizeInUse()
	start := time.Now()
	m.mu.Lock()
	m.defrag.Start, m.defrag.End, m.defrag.Reason, m.defrag.Waiting = start, time.Time{}, reason, ""
	m.defrag.SizeBefore, m.defrag.SizeAfter = before, 0
	m.defrag.AsLeader, m.defrag.HandedOver = asLeader, handedOver
	m.mu.Unlock()
	m.log.Info("defragmentation started", m.self(), slog.String(KeyReason, reason),
		slog.Int64(KeySize, before), slog.Int64(KeyInUse, inUse))

	err := srv.Defragment()

	after := be.Size()
	took := time.Since(start)
	// Logged before it is counted: whoever sees it in Status finds its record.
	m.met.defragged(m.ctx, took, err)
	if err != nil {
		m.log.Warn("defragmentation failed", m.self(), slog.Duration(KeyTook, took), slog.Any(KeyErr, err))
	} else {
		m.log.Info("defragmentation finished", m.self(), slog.Duration(KeyTook, took),
			slog.Int64(KeySizeBefore, before), slog.Int64(KeySizeAfter, after))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.defrag.End, m.defrag.SizeAfter = time.Now(), after
	if err != nil {
		m.defrag.Failures++
		m.defrag.Err = err
		return err
	}
	m.defrag.Count++
	m.defrag.Err = nil
	if after >= 1<<20 {
		m.defragSpeed = float64(after) / took.Seconds()
	}
	return nil
}

// memberState is one member's answer to Status.
type memberState struct {
	id      uint64
	name    string
	url     string
	learner bool
	st      *clientv3.StatusResponse
}

// survey asks every member for its status, the leader's answer first.
func (m *maintainer) survey(ctx context.Context, cli *clientv3.Client) ([]memberState, error) {
	var out []memberState
	for _, mem := range m.s.etcd.Server.Cluster().Members() {
		if mem.Name == "" || len(mem.ClientURLs) == 0 {
			return nil, fmt.Errorf("member %s has not started", mem.ID)
		}
		tctx, cancel := context.WithTimeout(ctx, surveyTimeout)
		st, err := cli.Status(tctx, mem.ClientURLs[0])
		cancel()
		if err != nil {
			return nil, fmt.Errorf("member %s does not answer: %v", mem.Name, err)
		}
		out = append(out, memberState{id: uint64(mem.ID), name: mem.Name, url: mem.ClientURLs[0], learner: mem.IsLearner, st: st})
	}
	slices.SortStableFunc(out, func(a, b memberState) int {
		switch {
		case a.id == a.st.Leader:
			return -1
		case b.id == b.st.Leader:
			return 1
		}
		return 0
	})
	return out, nil
}

// maxApplyLag is how far behind its leader's commit index a member may apply
// and still count as healthy.
const maxApplyLag = 1000

// healthy checks that the members agree on a leader, raise no alarm and are
// caught up.
func (m *maintainer) healthy(states []memberState) error {
	if len(m.s.etcd.Server.Alarms()) > 0 {
		return fmt.Errorf("an alarm is raised")
	}
	lead := states[0].st.Leader
	if lead == 0 || states[0].id != lead {
		return fmt.Errorf("no leader")
	}
	committed := states[0].st.RaftIndex
	for _, s := range states {
		switch {
		case s.st.Leader != lead:
			return fmt.Errorf("member %s sees another leader", s.name)
		case len(s.st.Errors) > 0:
			return fmt.Errorf("member %s reports %v", s.name, s.st.Errors)
		case s.st.RaftAppliedIndex+maxApplyLag < committed:
			return fmt.Errorf("member %s is catching up", s.name)
		}
	}
	return nil
}

func quotaOf(q int64) int64 {
	if q > 0 {
		return q
	}
	return defaultQuota
}

func hexID(id uint64) string { return types.ID(id).String() }
