package e2e

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// A worker or gateway that cannot start says why, in the SDK's words, and
// exits 1 within a bound: no panic, no silent hang. While etcd does not
// answer it says so, and gives up after the time its flag states.
func TestStartFailuresExitWithTheReason(t *testing.T) {
	gw, wk := build(t)
	d := newDemo(t)
	d.startWorker("dup")

	// An address where nothing listens (etcd not running), and one that
	// accepts connections and never answers (a hung etcd, a black hole).
	refused := etcdtest.FreeAddr(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()

	cases := []struct {
		name   string
		bin    string
		args   []string
		want   []string // every one of these in the output
		within time.Duration
	}{
		{"duplicate worker ID", wk, []string{"-etcd", d.etcdAddr, "-id", "dup"},
			[]string{"register worker/dup", "registry: instance registered by another owner"}, 20 * time.Second},
		{"bad service name", wk, []string{"-etcd", d.etcdAddr, "-id", "x", "-service", "no spaces"},
			[]string{"invalid", `"no spaces"`}, 20 * time.Second},
		{"worker, etcd refusing connections", wk, []string{"-etcd", refused, "-id", "x", "-etcd-timeout", "2s"},
			[]string{"connecting to etcd at " + refused, "does not answer yet", "did not answer within 2s"}, 10 * time.Second},
		{"worker, etcd never answering", wk, []string{"-etcd", silent.Addr().String(), "-id", "x", "-etcd-timeout", "2s"},
			[]string{"connecting to etcd at " + silent.Addr().String(), "did not answer within 2s"}, 10 * time.Second},
		{"worker port in use", wk, []string{"-etcd", d.etcdAddr, "-id", "x", "-listen", d.httpAddr},
			[]string{"address already in use"}, 20 * time.Second},
		{"gateway, etcd refusing connections", gw, []string{"-etcd", refused, "-listen", etcdtest.FreeAddr(t), "-etcd-timeout", "2s"},
			[]string{"connecting to etcd at " + refused, "did not answer within 2s"}, 10 * time.Second},
		{"gateway HTTP port in use", gw, []string{"-listen", d.httpAddr, "-etcd-listen", etcdtest.FreeAddr(t)},
			[]string{"gateway: listen tcp " + d.httpAddr, "address already in use"}, 10 * time.Second},
		{"gateway etcd port in use", gw, []string{"-listen", etcdtest.FreeAddr(t), "-etcd-listen", d.etcdAddr},
			[]string{"gateway: etcd:", "address already in use"}, 20 * time.Second},
		{"gateway -cluster without -name", gw, []string{"-listen", etcdtest.FreeAddr(t), "-cluster", "a=http://127.0.0.1:1"},
			[]string{"-cluster needs -name"}, 10 * time.Second},
	}
	t.Run("cases", func(t *testing.T) { // returns once every parallel case ended
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				began := time.Now()
				p := start(t, c.name, c.bin, c.args...)
				code := p.wait(c.within)
				took := time.Since(began)
				out := strings.Join(p.output(), "\n")
				t.Logf("exit %d after %v:\n%s", code, took.Round(time.Millisecond), out)
				require.Equal(t, 1, code, "exit code")
				for _, w := range c.want {
					require.Contains(t, out, w)
				}
				require.NotContains(t, out, "panic")
				require.NotContains(t, out, "goroutine ")
			})
		}
	})
	require.Zero(t, d.workers["dup"].stop(15*time.Second))
	require.Zero(t, d.gateway.stop(15*time.Second))
}
