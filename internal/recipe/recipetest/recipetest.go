// Package recipetest holds the fault scenarios that the election and lock
// tests share: a timeline of what happened when, and the Raft leader kill
// measured against the moment fenced writes resume.
package recipetest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// Timeline records events, and the fenced writes etcd accepted, with the
// time each happened.
type Timeline struct {
	mu       sync.Mutex
	events   []Event
	accepted []Event
}

// An Event is one thing that happened, to whom, when.
type Event struct {
	At   time.Time
	Who  string
	What string
}

// Mark records that what happened to who now, and returns now.
func (tl *Timeline) Mark(who, what string) time.Time {
	now := time.Now()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, Event{now, who, what})
	return now
}

// Accepted records a fenced write of who's that etcd accepted just now.
func (tl *Timeline) Accepted(who string) {
	now := time.Now()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.accepted = append(tl.accepted, Event{now, who, "first fenced write accepted"})
}

// FirstAccepted returns the first fenced write accepted after t.
func (tl *Timeline) FirstAccepted(after time.Time) (Event, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	i, _ := slices.BinarySearchFunc(tl.accepted, after, func(e Event, t time.Time) int { return e.At.Compare(t) })
	for ; i < len(tl.accepted); i++ {
		if tl.accepted[i].At.After(after) {
			return tl.accepted[i], true
		}
	}
	return Event{}, false
}

// Since lists the events from t on, as offsets from t, with the first
// fenced write accepted after t among them.
func (tl *Timeline) Since(t time.Time) string {
	tl.mu.Lock()
	var evs []Event
	for _, e := range tl.events {
		if !e.At.Before(t) {
			evs = append(evs, e)
		}
	}
	tl.mu.Unlock()
	if w, ok := tl.FirstAccepted(t); ok {
		evs = append(evs, w)
	}
	slices.SortStableFunc(evs, func(a, b Event) int { return a.At.Compare(b.At) })
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %+8.3fs  %-4s %s", e.At.Sub(t).Seconds(), e.Who, e.What)
	}
	return b.String()
}

// Logger returns a logger whose records are marked on the timeline as who's,
// with their error, if any.
func (tl *Timeline) Logger(who string) *slog.Logger {
	return slog.New(&handler{tl: tl, who: who})
}

type handler struct {
	tl    *Timeline
	who   string
	attrs []slog.Attr
}

func (h *handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	what := r.Message
	add := func(a slog.Attr) bool {
		if a.Key == "err" || a.Key == "after" {
			what += fmt.Sprintf(" (%s: %v)", a.Key, a.Value)
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.tl.Mark(h.who, what)
	return nil
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{tl: h.tl, who: h.who, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *handler) WithGroup(string) slog.Handler { return h }

// Result is one leader-kill trial.
type Result struct {
	// NewLeader is how long after the kill the cluster agreed on a new Raft
	// leader; Resume how long after that etcd accepted a fenced write.
	NewLeader, Resume time.Duration
	Timeline          string
}

// KillLeader kills c's Raft leader while the contenders write, measures
// when fenced writes resume, and restarts the member. The contenders must
// be writing (tl.Accepted) when it is called.
func KillLeader(t *testing.T, c *etcdtest.Cluster, tl *Timeline) Result {
	t.Helper()
	awaitWrites(t, tl, time.Now())
	leader := c.Leader()
	killed := tl.Mark("test", "Raft leader "+leader.Name()+" killed")
	leader.Kill()
	c.Leader()
	elected := tl.Mark("test", "new Raft leader")
	first := awaitWrites(t, tl, killed)
	r := Result{NewLeader: elected.Sub(killed), Resume: first.At.Sub(elected), Timeline: tl.Since(killed)}
	leader.Restart()
	c.Leader()
	return r
}

// awaitWrites waits for a fenced write accepted after t.
func awaitWrites(t *testing.T, tl *Timeline, after time.Time) Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if e, ok := tl.FirstAccepted(after); ok {
			return e
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	t.Fatalf("no fenced write accepted within 30 s:%s", tl.Since(after))
	return Event{}
}

// Summary is the median and maximum of ds.
func Summary(ds []time.Duration) (median, maximum time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// Trials is how many Raft leader kills a test measures: a few by default,
// 20 with ROSTER_LONG=1.
func Trials() int {
	if os.Getenv("ROSTER_LONG") == "1" {
		return 20
	}
	return 2
}

// WriteTimeout bounds each fenced write of a failover workload. A write
// sent to a follower just before its leader died waits for its own
// deadline (etcd's own is 7 s), since the follower forwarded it to a
// leader that is gone: keep it short, as an application would.
const WriteTimeout = 500 * time.Millisecond

// Pace waits d, or until ctx ends.
func Pace(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Report logs the trials' figures and checks the goal: fenced writes
// resume within a second of the new Raft leader, at the median.
func Report(t *testing.T, what string, ttl time.Duration, rs []Result) {
	t.Helper()
	var newLeader, resume []time.Duration
	for _, r := range rs {
		newLeader, resume = append(newLeader, r.NewLeader), append(resume, r.Resume)
	}
	med, worst := Summary(resume)
	lmed, lworst := Summary(newLeader)
	t.Logf("%s, %d trials, TTL %v: new Raft leader median %v max %v; fenced writes resume after it median %v max %v",
		what, len(rs), ttl, lmed.Round(time.Millisecond), lworst.Round(time.Millisecond),
		med.Round(time.Millisecond), worst.Round(time.Millisecond))
	if med > time.Second {
		t.Errorf("%s: fenced writes resumed %v after the new Raft leader at the median; the goal is 1 s", what, med)
	}
}
