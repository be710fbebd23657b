package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/lock"
	"github.com/rosterkit/roster/session"
)

// clients is how many processes of the system under test share the
// cluster.
const clients = 3

// The suite against three members embedded in the test process.
func TestFaults(t *testing.T) {
	runSuite(t, startEmbedded(t, 3))
}

// The same suite against three standalone etcd processes (see
// scripts/external-cluster.sh): the SDK reaches them over the network only,
// and faults are SIGKILL and SIGTERM.
func TestFaultsExternal(t *testing.T) {
	if os.Getenv("ROSTER_EXTERNAL") != "1" {
		t.Skip("set ROSTER_EXTERNAL=1, or run scripts/external-cluster.sh, to run against member processes")
	}
	runSuite(t, startProcesses(t, 3))
}

// fault breaks the cluster or a client in one way and returns once it is
// mended; the suite then checks that everything heals.
type fault struct {
	name   string
	inject func(s *suite, t *testing.T, round int)
}

const (
	leaderKilled    = "Raft leader killed and restarted"
	memberRestarted = "member restarted on its data"
	clientCutOff    = "client black-holed past its TTL"
	clientReset     = "client cut off by resets past its TTL"
	takeoverLead    = "client black-holed as it takes the leadership"
	takeoverLock    = "client black-holed as it takes the mutex"
	processPaused   = "client process paused past its TTL"
	compacted       = "compaction while a client is cut off"
	compactedPaused = "compaction while a client is black-holed"
	clusterRestart  = "whole cluster stopped and restarted"
)

// Every partition is applied both ways: as a black hole (bytes held,
// connections open: Pause) and as resets (Cut).
var faultsInTurn = []fault{
	{leaderKilled, (*suite).killLeader},
	{memberRestarted, (*suite).restartMember},
	{clientCutOff, func(s *suite, t *testing.T, round int) {
		s.partitionClient(t, round, clientCutOff, (*client).partition)
	}},
	{clientReset, func(s *suite, t *testing.T, round int) { s.partitionClient(t, round, clientReset, (*client).cut) }},
	{takeoverLead, func(s *suite, t *testing.T, round int) { s.partitionAtTakeover(t, round, true) }},
	{takeoverLock, func(s *suite, t *testing.T, round int) { s.partitionAtTakeover(t, round, false) }},
	{processPaused, (*suite).pauseProcess},
	{compacted, func(s *suite, t *testing.T, round int) { s.compactWhileCut(t, round, compacted, (*client).cut) }},
	{compactedPaused, func(s *suite, t *testing.T, round int) {
		s.compactWhileCut(t, round, compactedPaused, (*client).partition)
	}},
	{clusterRestart, (*suite).restartCluster},
}

// rounds is how many times the faults are applied in turn: once, or
// ROSTER_SOAK_ROUNDS (default 10) with ROSTER_SOAK=1.
func rounds(t *testing.T) int {
	if os.Getenv("ROSTER_SOAK") != "1" {
		return 1
	}
	n := 10
	if v := os.Getenv("ROSTER_SOAK_ROUNDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("ROSTER_SOAK_ROUNDS=%q: want a positive number", v)
		}
	}
	return n
}

// suite is one run: the cluster, the clients and their histories.
type suite struct {
	endpoints []string
	cluster   cluster
	observer  *clientv3.Client // reads etcd's truth and compacts; never cut off
	clients   []*client
	elections *history
	locks     *history
	nextID    atomic.Int64
	phase     atomic.Pointer[string]

	figures []figure
}

// figure is one measured time, for the log.
type figure struct {
	fault, what string
	d           time.Duration
}

func (s *suite) currentPhase() string { return *s.phase.Load() }
func (s *suite) setPhase(p string)    { s.phase.Store(&p) }

func (s *suite) record(fault, what string, d time.Duration) {
	s.figures = append(s.figures, figure{fault, what, d})
}

func runSuite(t *testing.T, c cluster) {
	began := time.Now()
	var eps []string
	for i := range c.Size() {
		eps = append(eps, c.Endpoint(i))
	}
	s := &suite{
		endpoints: eps,
		cluster:   c,
		observer:  etcdtest.NewClient(t, eps...),
		elections: newHistory("election"),
		locks:     newHistory("mutex"),
	}
	s.setPhase("start")
	for i := range clients {
		s.clients = append(s.clients, newClient(t, c, fmt.Sprintf("c%d", i)))
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			for _, cl := range s.clients {
				cl.stalled.Store(false)
				cl.restore()
			}
			cancel()
			wg.Wait()
			for _, cl := range s.clients {
				if err := cl.close(); err != nil {
					t.Logf("closing %s: %v", cl.name, err)
				}
			}
		})
	}
	t.Cleanup(stop) // before the clients' own cleanups, registered earlier
	t.Cleanup(func() {
		if t.Failed() {
			s.report(t, time.Since(began)) // what healed, and how fast, before the failure
		}
	})

	for i, cl := range s.clients {
		rctx, rcancel := context.WithTimeout(ctx, patience)
		require.NoError(t, cl.register(rctx, 20000+i))
		rcancel()
		wg.Go(func() { s.campaign(ctx, cl) })
		wg.Go(func() { s.contend(ctx, cl) })
		wg.Go(func() { s.churn(ctx, cl, 20000+i) })
	}
	s.healed(t, "start")

	n := rounds(t)
	for round := range n {
		for _, f := range faultsInTurn {
			name := f.name
			if n > 1 {
				name = fmt.Sprintf("%s (round %d)", f.name, round+1)
			}
			t.Logf("fault: %s", name)
			s.setPhase(name)
			f.inject(s, t, round)
			s.setPhase(name + ", healing")
			s.healed(t, f.name)
		}
	}
	s.setPhase("stopping")
	stop()
	s.report(t, time.Since(began))
	s.checkHistories(t)
}

// healed waits until, after a fault, the election and the mutex make
// progress, every cache is current and every registrar's instances are
// back under a live lease. Times are measured from the fault's end.
func (s *suite) healed(t *testing.T, fault string) {
	t.Helper()
	start := time.Now()
	s.awaitProgress(t, s.mark(""), "")
	s.record(fault, "fenced writes resume", time.Since(start))
	s.awaitRegistered(t)
	s.record(fault, "every instance registered under a live lease", time.Since(start))
	s.awaitConverged(t, s.clients)
	s.record(fault, "every cache equals etcd", time.Since(start))
}

func (s *suite) killLeader(t *testing.T, _ int) {
	leader := s.cluster.Leader(t)
	s.cluster.Kill(t, leader)
	down := time.Now()
	s.cluster.Leader(t)
	elected := time.Now()
	s.record(leaderKilled, "new Raft leader", elected.Sub(down))
	s.awaitProgress(t, s.mark(""), "")
	s.record(leaderKilled, "fenced writes on two members", time.Since(down))
	s.record(leaderKilled, "fenced writes after the new Raft leader", time.Since(elected))
	s.cluster.Restart(t, leader)
}

func (s *suite) restartMember(t *testing.T, round int) {
	leader := s.cluster.Leader(t)
	i := (leader + 1 + round%(s.cluster.Size()-1)) % s.cluster.Size()
	start := time.Now()
	s.cluster.Stop(t, i)
	down := time.Now()
	s.record(memberRestarted, "graceful stop", down.Sub(start))
	s.awaitProgress(t, s.mark(""), "")
	s.record(memberRestarted, "fenced writes on two members", time.Since(down))
	start = time.Now()
	s.cluster.Restart(t, i)
	s.record(memberRestarted, "restart until it serves", time.Since(start))
}

// partitionClient cuts the client that leads and holds the mutex off from
// etcd with cut (a black hole or resets), until its lease has expired in
// etcd and the others have taken over. The cut-off client must learn that
// it lost both before anyone else acts as leader or holder; the others'
// caches must see its instances go.
func (s *suite) partitionClient(t *testing.T, round int, fault string, cut func(*client)) {
	cl := s.clients[round%len(s.clients)]
	cl.stalled.Store(true) // once it leads and holds, it keeps both
	defer cl.stalled.Store(false)
	var (
		l *election.Leadership
		h *lock.Hold
	)
	waitFor(t, cl.name+" leads and holds the mutex", func() bool {
		l, h = cl.leadership.Load(), cl.hold.Load()
		return l != nil && h != nil && l.Err() == nil && h.Err() == nil
	})
	lease := cl.reg.Status().Lease
	require.NotZero(t, lease, "%s has a lease before the partition", cl.name)
	m := s.mark(cl.name)
	start := time.Now()
	cut(cl)
	// One write each as leader and holder, sent after the partition began
	// and before they can know they lost: it is held in the network, or
	// fails on the resets.
	leadWrite, holdWrite := make(chan write, 1), make(chan write, 1)
	go func() {
		leadWrite <- s.fencedWrite(context.Background(), cl, s.elections, l.Token(), electionLogPfx, cl.elec.Prefix(), l.Do)
	}()
	go func() {
		holdWrite <- s.fencedWrite(context.Background(), cl, s.locks, h.Token(), lockLogPfx, cl.mutex.Prefix(), holdTxn(h))
	}()

	lostLead, lostHold := awaitLoss(t, l, h)
	require.ErrorIs(t, l.Err(), session.ErrExpired, "the cut-off leader's session expired")
	require.ErrorIs(t, h.Err(), session.ErrExpired, "the cut-off holder's session expired")
	s.record(fault, "cut-off leader learns it lost", lostLead.Sub(start))
	s.record(fault, "cut-off holder learns it lost", lostHold.Sub(start))
	s.leaseGone(t, cl.name+"'s registrar lease expires in etcd", lease)
	s.record(fault, fmt.Sprintf("its lease gone in etcd (TTL %v)", ttl), time.Since(start))
	s.awaitProgress(t, m, cl.name)
	s.record(fault, "the others write as leader and holder", time.Since(start))

	// Nobody acted as leader or holder before the cut-off one knew.
	for _, c := range []struct {
		what   string
		h      *history
		token  int64
		lostAt time.Time
	}{{"leader", s.elections, l.Token(), lostLead}, {"holder", s.locks, h.Token(), lostHold}} {
		next, ok := firstWriteAfter(c.h, c.token)
		require.True(t, ok, "a new %s wrote", c.what)
		require.True(t, c.lostAt.Before(next.invoke),
			"the cut-off %s learned it lost at %s, after %s's first write as the next one at %s",
			c.what, stamp(c.lostAt), next.who, stamp(next.invoke))
		s.record(fault, "the cut-off "+c.what+" knew before the next one wrote, by", next.invoke.Sub(c.lostAt))
	}

	var others []*client
	for _, o := range s.clients {
		if o != cl {
			others = append(others, o)
		}
	}
	s.awaitConverged(t, others)
	s.record(fault, "the others' caches equal etcd", time.Since(start))

	// The writes sent into a black hole reach etcd now; it must refuse
	// them. Behind resets they may have failed already: then they must not
	// have been applied.
	restored := time.Now()
	cl.restore()
	for _, c := range []struct {
		what string
		ch   <-chan write
	}{{"leader", leadWrite}, {"holder", holdWrite}} {
		var w write
		select {
		case w = <-c.ch:
		case <-time.After(patience):
			t.Fatalf("the cut-off %s's write sent into the partition has not returned %v after it", c.what, patience)
		}
		require.NotEqual(t, applied, w.outcome, "the cut-off %s's write sent into the partition was applied", c.what)
		if fault == clientCutOff {
			require.Equal(t, refused, w.outcome, "the cut-off %s's write sent into the partition: %v", c.what, w.err)
			require.True(t, w.ret.After(restored), "the cut-off %s's write was refused by etcd, after the partition", c.what)
		}
	}
}

// awaitLoss waits for both the leadership's and the hold's Done, and
// returns when each was seen closed. Both are watched at once: their
// sessions differ, so either may end first.
func awaitLoss(t *testing.T, l *election.Leadership, h *lock.Hold) (lead, hold time.Time) {
	t.Helper()
	leadDone, holdDone := l.Done(), h.Done()
	timeout := time.After(patience)
	for leadDone != nil || holdDone != nil {
		select {
		case <-leadDone:
			lead, leadDone = time.Now(), nil
		case <-holdDone:
			hold, holdDone = time.Now(), nil
		case <-timeout:
			t.Fatalf("the cut-off client still believes it leads (%v) or holds (%v) %v after the partition",
				l.Err(), h.Err(), patience)
		}
	}
	return lead, hold
}

// firstWriteAfter returns the first applied write, by invocation, under a
// token greater than token.
func firstWriteAfter(h *history, token int64) (write, bool) {
	writes, _ := h.snapshot()
	var first write
	found := false
	for _, w := range writes {
		if w.outcome == applied && w.token > token && (!found || w.invoke.Before(first.invoke)) {
			first, found = w, true
		}
	}
	return first, found
}

// compactWhileCut cuts one client off with cut, changes a service it
// watches, compacts past the change and lets the client back: its watch
// cannot resume, and its cache must list the service again to see the
// change. A black hole is held past twice the progress interval: the
// cache must say it is stale meanwhile.
func (s *suite) compactWhileCut(t *testing.T, round int, fault string, cut func(*client)) {
	cl := s.clients[(round+1)%len(s.clients)]
	lists := listsOf(cl)
	cut(cl)
	cutAt := time.Now()
	probe := roster.Instance{Service: services[0], ID: "probe", Addr: fmt.Sprintf("127.0.0.1:%d", 30000+round)}
	value, err := roster.EncodeInstance(probe)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	_, err = s.observer.Put(ctx, keys.InstanceKey(keys.DefaultNamespace, probe.Service, probe.ID), string(value))
	require.NoError(t, err)
	// Compact past the change itself: a watch that had seen everything
	// before it could otherwise resume at its revision, with no re-list.
	resp, err := s.observer.Put(ctx, "/faults-compaction-mark", fmt.Sprint(round))
	require.NoError(t, err)
	_, err = s.observer.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	cache := cl.caches[0]
	if fault == compactedPaused {
		waitFor(t, cl.name+"'s cache says it is stale", func() bool { return errors.Is(cache.Err(), roster.ErrStale) })
		took := time.Since(cutAt)
		s.record(fault, "the cache says it is stale", took)
		require.LessOrEqual(t, took, 2*progressEvery+waitForPoll, "stale within twice the progress interval")
	}
	start := time.Now()
	cl.restore()
	waitFor(t, cl.name+"'s cache shows the change made while it was cut off", func() bool {
		got, ok := cache.Snapshot().Lookup(probe.ID)
		return ok && got.Addr == probe.Addr
	})
	s.record(fault, "the cut-off cache shows the change", time.Since(start))
	require.Greater(t, listsOf(cl), lists, "%s's caches listed again", cl.name)
	_, err = s.observer.Delete(ctx, keys.InstanceKey(keys.DefaultNamespace, probe.Service, probe.ID))
	require.NoError(t, err)
}

// restartCluster stops every member, waits until the clients have given
// their leases up for lost, then starts the members again on their data. Gracefully, followers go first: a leader stopped together with
// its followers would wait out etcd's request timeout (7 s) trying to hand
// its leadership to one of them. Odd soak rounds kill every member at once.
func (s *suite) restartCluster(t *testing.T, round int) {
	all := make([]int, s.cluster.Size())
	for i := range all {
		all[i] = i
	}
	kill := round%2 == 1
	start := time.Now()
	how := "killed"
	if kill {
		stopAll(t, s.cluster, all, true)
	} else {
		how = "stopped, followers first"
		leader := s.cluster.Leader(t)
		stopAll(t, s.cluster, slices.DeleteFunc(slices.Clone(all), func(i int) bool { return i == leader }), false)
		s.cluster.Stop(t, leader)
	}
	s.record(clusterRestart, "every member "+how, time.Since(start))
	// Down past the TTL: every client presumes its leases lost, while etcd
	// will bring them back with the members, for a while.
	waitFor(t, "every registrar presumes its lease lost", func() bool {
		return !slices.ContainsFunc(s.clients, func(cl *client) bool { return cl.reg.Status().Healthy })
	})
	s.record(clusterRestart, "every registrar presumes its lease lost", time.Since(start))
	restartAll(t, s.cluster, all)
	s.record(clusterRestart, "cluster down", time.Since(start))
}

// checkHistories checks the recorded histories against each other and
// against the logs etcd kept.
func (s *suite) checkHistories(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for _, h := range []struct {
		h   *history
		pfx string
	}{{s.elections, electionLogPfx}, {s.locks, lockLogPfx}} {
		writes, terms := h.h.snapshot()
		log, err := readLog(ctx, s.observer, h.pfx)
		require.NoError(t, err)
		t.Log(h.h.counts())
		require.NoError(t, checkTerms(terms), "%s: holders that saw no loss overlap", h.h.name)
		require.NoError(t, checkWithin(writes, terms), "%s: writes outside their terms", h.h.name)
		require.NoError(t, checkLog(writes, log), "%s: etcd's log disagrees with the writers", h.h.name)
		for _, cl := range s.clients {
			require.True(t, slices.ContainsFunc(terms, func(tm term) bool { return tm.who == cl.name && !tm.lost }),
				"%s: %s never held: the check would be hollow", h.h.name, cl.name)
		}
	}
}

// report logs the measured times: for each fault and step, the number of
// samples, the median and the maximum.
func (s *suite) report(t *testing.T, total time.Duration) {
	if len(s.figures) == 0 {
		return
	}
	type key struct{ fault, what string }
	var order []key
	samples := map[key][]time.Duration{}
	for _, f := range s.figures {
		k := key{f.fault, f.what}
		if _, ok := samples[k]; !ok {
			order = append(order, k)
		}
		samples[k] = append(samples[k], f.d)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "measured (TTL %v), total %v:\n", ttl, total.Round(time.Millisecond))
	for _, k := range order {
		ds := samples[k]
		slices.Sort(ds)
		fmt.Fprintf(&b, "  %-45s %-55s n=%-3d median %-8v max %v\n", k.fault, k.what, len(ds),
			ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	}
	t.Log(b.String())
}
