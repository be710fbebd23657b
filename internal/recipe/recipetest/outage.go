package recipetest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// An Outage is one way etcd stops answering a client that reaches member m
// through proxy p.
type Outage struct {
	Name string
	// Start breaks the path and returns the function that mends it.
	Start func(t *testing.T, p *etcdtest.Proxy, m *etcdtest.Member) (mend func())
}

// Outages are a black hole (bytes held, connections open), a reset (RST,
// new connections refused) and the member stopped.
var Outages = []Outage{
	{"black hole", func(t *testing.T, p *etcdtest.Proxy, _ *etcdtest.Member) func() { p.Pause(); return p.Restore }},
	{"reset", func(t *testing.T, p *etcdtest.Proxy, _ *etcdtest.Member) func() { p.Cut(); return p.Restore }},
	{"member stopped", func(t *testing.T, _ *etcdtest.Proxy, m *etcdtest.Member) func() { m.Stop(); return m.Restart }},
}

// Slack is how much later than its context's deadline a call may return: a
// second for scheduling, plus the 2 s an acquisition whose put may have
// landed takes to withdraw its key.
const (
	Slack         = time.Second
	WithdrawSlack = Slack + 2*time.Second
)

// Bounded runs call with a context that ends after d and fails t unless it
// returns an error within d plus Slack. It returns the error.
func Bounded(t *testing.T, what string, d time.Duration, call func(ctx context.Context) error) error {
	t.Helper()
	return BoundedWithin(t, what, d, Slack, call)
}

// BoundedWithin is Bounded with a slack of one's own.
func BoundedWithin(t *testing.T, what string, d, slack time.Duration, call func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	err := call(ctx)
	if took := time.Since(start); took > d+slack {
		t.Errorf("%s returned after %v, beyond its %v bound", what, took.Round(time.Millisecond), d)
	}
	if err == nil {
		t.Errorf("%s returned no error while etcd did not answer", what)
	}
	return err
}

// RequireNoLeases waits until etcd has no lease left: whatever a failed call
// granted is revoked, or expires because nothing renews it.
func RequireNoLeases(t *testing.T, cli *clientv3.Client, within time.Duration) {
	t.Helper()
	var left []clientv3.LeaseStatus
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := cli.Leases(ctx)
		cancel()
		if err == nil {
			if left = resp.Leases; len(left) == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases left behind after %v: %v (%v)", within, left, err)
		}
		time.Sleep(20 * time.Millisecond) // polling etcd for a condition, with a deadline
	}
}

// RequireNoKeys waits until no key is left under prefix.
func RequireNoKeys(t *testing.T, cli *clientv3.Client, prefix string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var n int64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err == nil {
			if n = resp.Count; n == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys left under %s after %v (%v)", n, prefix, within, err)
		}
		time.Sleep(20 * time.Millisecond) // polling etcd for a condition, with a deadline
	}
}
