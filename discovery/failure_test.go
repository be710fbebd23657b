package discovery_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// prompt bounds a call that must not wait on etcd.
const prompt = 2 * time.Second

// brokenEtcd is a way etcd can fail a client: it starts healthy, and
// breaks when told to.
type brokenEtcd struct {
	name  string
	start func(t *testing.T) (cli *clientv3.Client, breakIt func())
}

var brokenEtcds = []brokenEtcd{
	{"black-holed", func(t *testing.T) (*clientv3.Client, func()) {
		m := etcdtest.Start(t)
		p := etcdtest.NewProxy(t, m.Endpoints()[0])
		return etcdtest.NewClient(t, p.Endpoint()), p.Pause
	}},
	{"stopped", func(t *testing.T) (*clientv3.Client, func()) {
		m := etcdtest.Start(t)
		return etcdtest.NewClient(t, m.Endpoints()...), m.Stop
	}},
	{"client closed", func(t *testing.T) (*clientv3.Client, func()) {
		m := etcdtest.Start(t)
		cli := etcdtest.NewClient(t, m.Endpoints()...)
		return cli, func() { cli.Close() }
	}},
}

// bounded runs f and fails unless it returns within d.
func bounded(t *testing.T, what string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d + 5*time.Second):
		t.Fatalf("%s still blocked %v after it started (bound %v)", what, time.Since(start), d)
	}
	if took := time.Since(start); took > d {
		t.Errorf("%s took %v, bound %v", what, took, d)
	}
}

// Every exported call that waits returns within a bound, with a clear
// error, when etcd is black-holed, stopped, or the client closed; and once
// everything is closed, no goroutine of the package is left.
func TestCallsReturnWhenEtcdFails(t *testing.T) {
	for _, be := range brokenEtcds {
		t.Run(be.name, func(t *testing.T) {
			cli, breakIt := be.start(t)
			putInstance(t, cli, instance("synced", "a"))
			d := discoverer(t, cli)
			synced := cache(t, d, "synced")
			require.NoError(t, synced.WaitSynced(ctxT(t)))
			set, err := d.WatchServices()
			require.NoError(t, err)
			require.NoError(t, set.WaitSynced(ctxT(t)))

			breakIt()
			clientClosed := be.name == "client closed"
			want := func(t *testing.T, err error) {
				t.Helper()
				require.Error(t, err)
				if clientClosed {
					assert.ErrorIs(t, err, discovery.ErrClosed)
					assert.ErrorIs(t, err, roster.ErrClosed)
				} else {
					assert.ErrorIs(t, err, context.DeadlineExceeded)
				}
			}

			// A view that was synced is served and says why it is not
			// current, within twice the progress interval (stopped: at
			// once; black-holed: once reported stale).
			eventually(t, func() bool { return synced.Err() != nil }, "failure not reported")
			assert.Equal(t, 1, synced.Snapshot().Len())
			assert.True(t, set.Snapshot().Contains("synced"))
			if be.name == "black-holed" {
				assert.ErrorIs(t, synced.Err(), discovery.ErrStale)
			}

			var fresh *discovery.Cache
			bounded(t, "Watch", prompt, func() { fresh, err = d.Watch("fresh") })
			if clientClosed {
				want(t, err)
			} else {
				require.NoError(t, err)
				bounded(t, "WaitSynced", time.Second+prompt, func() { err = fresh.WaitSynced(timeout(t, time.Second)) })
				want(t, err)
				ch := fresh.Changes(timeout(t, 300*time.Millisecond))
				bounded(t, "Changes of a cache never synced", prompt, func() {
					for range ch {
						t.Error("a change from a cache that never listed")
					}
				})
			}

			// The synced cache's first change is its view; the channel
			// ends with its context (or at once when the client is gone).
			ch := synced.Changes(timeout(t, 300*time.Millisecond))
			bounded(t, "Changes of a synced cache", prompt, func() {
				for range ch {
				}
			})

			bounded(t, "Services", time.Second+prompt, func() { _, err = d.Services(timeout(t, time.Second)) })
			want(t, err)
			bounded(t, "ServiceSet.WaitSynced", prompt, func() { err = set.WaitSynced(timeout(t, time.Second)) })
			if clientClosed {
				want(t, err)
			} else {
				assert.NoError(t, err, "it had synced")
			}

			bounded(t, "Cache.Close", prompt, func() { require.NoError(t, synced.Close()) })
			if fresh != nil {
				bounded(t, "Cache.Close", prompt, func() { require.NoError(t, fresh.Close()) })
			}
			bounded(t, "ServiceSet.Close", prompt, func() { require.NoError(t, set.Close()) })
			bounded(t, "Discoverer.Close", prompt, func() { require.NoError(t, d.Close()) })
			requireNoGoroutinesLeft(t)
		})
	}
}

// requireNoGoroutinesLeft waits until no goroutine started by the package,
// or by the internal packages it starts goroutines through, is left.
func requireNoGoroutinesLeft(t *testing.T) {
	t.Helper()
	var left []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		left = ownGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
	t.Fatalf("%d goroutines left:\n%s", len(left), bytes.Join(toBytes(left), []byte("\n\n")))
}

func ownGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		for _, pkg := range []string{"discovery.", "internal/watch.", "internal/stream."} {
			if bytes.Contains(g, []byte("created by github.com/rosterkit/roster/"+pkg)) {
				out = append(out, string(g))
				break
			}
		}
	}
	return out
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// Bad input gets a clear error, never a panic: a nil client, nil or
// impossible options (zero means the default), a nil Source.
func TestNilAndInvalidInput(t *testing.T) {
	_, err := discovery.New(nil)
	require.ErrorIs(t, err, roster.ErrNilClient)

	cli := etcdtest.Start(t).Client()
	for _, tt := range []struct {
		name string
		opt  discovery.Option
		want error // nil: accepted
	}{
		{"zero progress interval", discovery.WithProgressInterval(0), nil},
		{"negative progress interval", discovery.WithProgressInterval(-time.Second), roster.ErrInvalidOption},
		{"tiny progress interval", discovery.WithProgressInterval(time.Microsecond), roster.ErrInvalidOption},
		{"zero backoff", discovery.WithBackoff(0, 0), nil},
		{"zero min backoff", discovery.WithBackoff(0, time.Second), nil},
		{"zero max backoff", discovery.WithBackoff(5*time.Second, 0), nil},
		{"negative min backoff", discovery.WithBackoff(-1, time.Second), roster.ErrInvalidOption},
		{"negative max backoff", discovery.WithBackoff(time.Millisecond, -1), roster.ErrInvalidOption},
		{"max backoff below min", discovery.WithBackoff(time.Second, time.Millisecond), roster.ErrInvalidOption},
		{"zero page size", discovery.WithPageSize(0), nil},
		{"negative page size", discovery.WithPageSize(-1), roster.ErrInvalidOption},
		{"empty namespace", discovery.WithNamespace(""), nil},
		{"bad namespace", discovery.WithNamespace("no-slash"), roster.ErrInvalidName},
		{"nil logger", discovery.WithLogger(nil), nil},
		{"nil meter provider", discovery.WithMeterProvider(nil), nil},
		{"nil option", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := discovery.New(cli, tt.opt)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				assert.Nil(t, d)
				return
			}
			require.NoError(t, err)
			defer d.Close()
			c, err := d.Watch("svc")
			require.NoError(t, err)
			require.NoError(t, c.WaitSynced(ctxT(t)))
			require.NoError(t, c.Close())
		})
	}
	// The error names the option and its value.
	_, err = discovery.New(cli, discovery.WithPageSize(-7))
	assert.ErrorContains(t, err, "WithPageSize(-7)")

	src := discovery.NewSnapshot("svc", instance("svc", "a"))
	static := staticSource{src}
	for _, tt := range []struct {
		name string
		opt  discovery.PickerOption
		want error
	}{
		{"zero ejection", discovery.WithEjection(0, 0), nil},
		{"negative failures", discovery.WithEjection(-1, time.Second), roster.ErrInvalidOption},
		{"negative cool-down", discovery.WithEjection(1, -time.Second), roster.ErrInvalidOption},
		{"no ejection", discovery.WithoutEjection(), nil},
		{"zero virtual nodes", discovery.WithVirtualNodes(0), nil},
		{"negative virtual nodes", discovery.WithVirtualNodes(-1), roster.ErrInvalidOption},
		{"too many virtual nodes", discovery.WithVirtualNodes(discovery.MaxVirtualNodes + 1), roster.ErrInvalidOption},
		{"nil filter", discovery.WithFilter(nil), nil},
		{"nil clock", discovery.WithClock(nil), nil},
		{"nil logger", discovery.WithLogger(nil), nil},
		{"nil meter provider", discovery.WithMeterProvider(nil), nil},
		{"nil option", nil, nil},
	} {
		t.Run("picker/"+tt.name, func(t *testing.T) {
			_, err1 := discovery.NewRoundRobin(static, tt.opt)
			_, err2 := discovery.NewRandom(static, tt.opt)
			_, err3 := discovery.NewWeighted(static, tt.opt)
			_, err4 := discovery.NewP2C(static, tt.opt)
			h, err5 := discovery.NewConsistentHash(static, tt.opt)
			for _, err := range []error{err1, err2, err3, err4, err5} {
				if tt.want == nil {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, tt.want)
				}
			}
			if tt.want == nil {
				p, err := h.Pick("k")
				require.NoError(t, err)
				p.Done(errors.New("down"))
			}
		})
	}
	_, err = discovery.NewP2C(nil)
	assert.ErrorIs(t, err, roster.ErrInvalidOption)
	_, err = discovery.NewConsistentHash(nil)
	assert.ErrorIs(t, err, roster.ErrInvalidOption)
	// A Source that returns nil is an empty one.
	rr, err := discovery.NewRoundRobin(staticSource{nil})
	require.NoError(t, err)
	_, err = rr.Pick()
	assert.ErrorIs(t, err, discovery.ErrNoInstances)
}

type staticSource struct{ s *discovery.Snapshot }

func (s staticSource) Snapshot() *discovery.Snapshot { return s.s }

// Calls after Close return ErrClosed (or keep serving the last view),
// never panic; Close is idempotent; nil handles are closed ones.
func TestCallsAfterClose(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	putInstance(t, cli, instance("svc", "a"))
	d := discoverer(t, cli)
	c := cache(t, d, "svc")
	require.NoError(t, c.WaitSynced(ctxT(t)))
	set, err := d.WatchServices()
	require.NoError(t, err)
	require.NoError(t, set.WaitSynced(ctxT(t)))
	p, err := discovery.NewP2C(c)
	require.NoError(t, err)
	require.NotEmpty(t, ownGoroutines(), "the leak check sees the package's goroutines")

	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.WaitSynced(ctxT(t)), discovery.ErrClosed)
	closed(t, c.Changes(ctxT(t)), time.Second)
	assert.Equal(t, 1, c.Snapshot().Len(), "the last view stays")
	pk, err := p.Pick()
	require.NoError(t, err, "a picker keeps the last view")
	pk.Done(nil)

	require.NoError(t, d.Close())
	require.NoError(t, d.Close())
	assert.ErrorIs(t, set.WaitSynced(ctxT(t)), discovery.ErrClosed)
	closed(t, set.Changes(ctxT(t)), time.Second)
	assert.True(t, set.Snapshot().Contains("svc"))
	require.NoError(t, set.Close())
	_, err = d.Watch("svc")
	assert.ErrorIs(t, err, discovery.ErrClosed)
	_, err = d.Services(ctxT(t))
	assert.ErrorIs(t, err, discovery.ErrClosed)
	_, err = d.WatchServices()
	assert.ErrorIs(t, err, discovery.ErrClosed)

	var nd *discovery.Discoverer
	_, err = nd.Watch("svc")
	assert.ErrorIs(t, err, discovery.ErrClosed)
	assert.NoError(t, nd.Close())
	var nc *discovery.Cache
	assert.NoError(t, nc.Close())
	//lint:ignore SA1012 a nil context must not panic
	assert.ErrorIs(t, nc.WaitSynced(nil), discovery.ErrClosed)
	assert.Zero(t, nc.Snapshot().Len())
	//lint:ignore SA1012 a nil context must not panic
	closed(t, nc.Changes(nil), time.Second)
	var ns *discovery.ServiceSet
	assert.NoError(t, ns.Close())
	assert.Zero(t, ns.Snapshot().Len())
	var snap *discovery.Snapshot
	assert.False(t, snap.Synced())
	_, ok := snap.Lookup("a")
	assert.False(t, ok)
	requireNoGoroutinesLeft(t)
}
