package registry_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// ownGoroutines returns the stacks of the goroutines running code of the
// registrar or of what it starts (sessions, event streams, watches).
func ownGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		for _, pkg := range []string{"roster/registry.", "roster/session.", "roster/internal/stream.", "roster/internal/watch."} {
			if strings.Contains(g, pkg) && !strings.Contains(g, "registry_test.") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// Issue 11: every exported blocking call returns within a bound with a
// clear error when etcd is black-holed, stopped, or the client closed, and
// leaves no goroutine, lease or key behind.
func TestFailurePaths(t *testing.T) {
	faults := []struct {
		name string
		// start returns the client the registrars use; fault breaks it,
		// heal mends it (for the check of what is left).
		start func(t *testing.T, m *etcdtest.Member) (cli *clientv3.Client, fault, heal func())
		// want is what every failed call's error must match.
		want error
		// closeFails says whether Close cannot reach etcd.
		closeFails bool
	}{
		{"black-holed", func(t *testing.T, m *etcdtest.Member) (*clientv3.Client, func(), func()) {
			p := etcdtest.NewProxy(t, m.Endpoints()[0])
			return etcdtest.NewClient(t, p.Endpoint()), p.Pause, p.Restore
		}, context.DeadlineExceeded, true},
		{"stopped", func(t *testing.T, m *etcdtest.Member) (*clientv3.Client, func(), func()) {
			return etcdtest.NewClient(t, m.Endpoints()...), m.Stop, m.Restart
		}, context.DeadlineExceeded, true},
		{"client closed", func(t *testing.T, m *etcdtest.Member) (*clientv3.Client, func(), func()) {
			cli, err := clientv3.New(clientv3.Config{Endpoints: m.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
			require.NoError(t, err)
			return cli, func() { cli.Close() }, func() {}
		}, roster.ErrClosed, true},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			m := etcdtest.Start(t)
			cli, fault, heal := f.start(t, m)
			fresh, err := registry.New(cli, registry.WithTTL(transitionTTL)) // no lease yet
			require.NoError(t, err)
			held, err := registry.New(cli, registry.WithTTL(transitionTTL)) // a live lease
			require.NoError(t, err)
			closing, err := registry.New(cli, registry.WithTTL(transitionTTL))
			require.NoError(t, err)
			ctx := testCtx(t)
			require.NoError(t, held.Register(ctx, instance("users", "a")))
			require.NoError(t, closing.Register(ctx, instance("orders", "a")))

			fault()
			calls := map[string]func(context.Context) error{
				"New": func(context.Context) error {
					r, err := registry.New(cli)
					if err == nil {
						return r.Close() // New waits for nothing
					}
					require.ErrorIs(t, err, f.want)
					return nil
				},
				"Register (granting)":  func(ctx context.Context) error { return fresh.Register(ctx, instance("users", "b")) },
				"Register (first put)": func(ctx context.Context) error { return held.Register(ctx, instance("users", "b")) },
				"Update": func(ctx context.Context) error {
					inst := instance("users", "a")
					inst.Weight = 3
					return held.Update(ctx, inst)
				},
				"Drain":      func(ctx context.Context) error { return held.Drain(ctx, "users", "a") },
				"Deregister": func(ctx context.Context) error { return held.Deregister(ctx, "users", "a") },
				// In a namespace of their own: a request that lands late
				// is an operator's, not something the registrars left.
				"RequestDrain": func(ctx context.Context) error {
					return registry.RequestDrain(ctx, cli, "users", "a", "", registry.WithNamespace("/ops"))
				},
				"CancelDrain": func(ctx context.Context) error {
					return registry.CancelDrain(ctx, cli, "users", "a", registry.WithNamespace("/ops"))
				},
				"DrainRequests": func(ctx context.Context) error {
					_, err := registry.DrainRequests(ctx, cli, registry.WithNamespace("/ops"))
					return err
				},
				"Events": func(ctx context.Context) error {
					for range held.Events(ctx) {
					}
					return ctx.Err() // closed with its context
				},
			}
			var wg sync.WaitGroup
			for name, call := range calls {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), failWithin)
					defer cancel()
					start := time.Now()
					err := call(ctx)
					took := time.Since(start)
					assert.Less(t, took, failWithin+slack, "%s took %v", name, took)
					if name == "New" {
						return
					}
					want := f.want
					if name == "Events" {
						want = context.DeadlineExceeded // the registrar is not closed
					}
					if assert.Error(t, err, name) {
						assert.ErrorIs(t, err, want, "%s: %v", name, err)
						t.Logf("%s: %v after %v", name, err, took.Round(time.Millisecond))
					}
				})
			}
			wg.Wait()

			// Ending: Shutdown within the caller's context, Close within
			// the TTL.
			for name, end := range map[string]func() error{
				"Shutdown, no lease": func() error {
					ctx, cancel := context.WithTimeout(context.Background(), failWithin)
					defer cancel()
					return fresh.Shutdown(ctx)
				},
				"Shutdown": func() error {
					ctx, cancel := context.WithTimeout(context.Background(), failWithin)
					defer cancel()
					return held.Shutdown(ctx)
				},
				"Close": closing.Close,
			} {
				wg.Go(func() {
					start := time.Now()
					err := end()
					took := time.Since(start)
					t.Logf("%s: %v after %v", name, err, took.Round(time.Millisecond))
					if name == "Close" {
						assert.Less(t, took, transitionTTL+slack, "%s is bounded by the TTL", name)
					} else {
						assert.Less(t, took, failWithin+slack, "%s is bounded by its context", name)
					}
					if name == "Shutdown, no lease" {
						// A grant may have landed meanwhile (etcd stopped
						// after receiving it): its revoke fails too.
						return
					}
					if f.closeFails && assert.Error(t, err, name) {
						assert.NotErrorIs(t, err, registry.ErrClosed)
					}
				})
			}
			wg.Wait()
			require.Equal(t, held.Close(), held.Shutdown(context.Background()), "later calls return the first result")
			require.ErrorIs(t, held.Register(ctx, instance("users", "c")), registry.ErrClosed)

			until(t, time.Second, func() bool { return len(ownGoroutines()) == 0 }, "no goroutine of the registrars left")
			heal()
			plain := m.Client()
			noneLeft(t, plain, roster.DefaultNamespace, transitionTTL+3*time.Second)
		})
	}
	if gs := ownGoroutines(); len(gs) > 0 {
		t.Fatalf("goroutines left:\n%s", strings.Join(gs, "\n\n"))
	}
}

// Issue 11: no input panics, and every call after Close says so.
func TestNilZeroAndAfterClose(t *testing.T) {
	m := etcdtest.Start(t)
	_, err := registry.New(nil)
	require.ErrorIs(t, err, roster.ErrNilClient)
	_, err = registry.New(&clientv3.Client{})
	require.ErrorIs(t, err, roster.ErrNilClient, "a client not made by clientv3.New")

	r := newRegistrar(t, m.Client())
	var nilCtx context.Context // callers' mistake: treated as Background
	require.NoError(t, r.Register(nilCtx, instance("users", "a")))
	require.NoError(t, r.Update(nilCtx, instance("users", "a")))
	require.NoError(t, r.Drain(nilCtx, "users", "a"))
	evs := r.Events(nilCtx)
	require.ErrorIs(t, r.Register(nilCtx, roster.Instance{}), roster.ErrInvalidName)
	require.ErrorIs(t, r.Update(nilCtx, roster.Instance{}), roster.ErrInvalidName)
	require.ErrorIs(t, r.Drain(nilCtx, "", ""), roster.ErrInvalidName)
	require.ErrorIs(t, r.Deregister(nilCtx, "", ""), roster.ErrInvalidName)
	require.NoError(t, r.Deregister(nilCtx, "users", "a"))

	require.NoError(t, r.Shutdown(nilCtx))
	_, open := <-evs
	require.False(t, open)
	for name, err := range map[string]error{
		"Register":   r.Register(nilCtx, instance("users", "a")),
		"Update":     r.Update(nilCtx, instance("users", "a")),
		"Drain":      r.Drain(nilCtx, "users", "a"),
		"Deregister": r.Deregister(nilCtx, "users", "a"),
	} {
		require.ErrorIs(t, err, registry.ErrClosed, name)
		require.ErrorIs(t, err, roster.ErrClosed, name)
	}
	_, open = <-r.Events(context.Background())
	require.False(t, open, "Events after Close: closed at once")
	st := r.Status()
	require.False(t, st.Healthy)
	require.ErrorIs(t, st.Err, registry.ErrClosed)
	require.Empty(t, r.Instances())
	require.NoError(t, r.Close())
	require.True(t, errors.Is(r.Shutdown(context.Background()), nil))
}
