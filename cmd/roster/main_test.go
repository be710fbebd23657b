package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// roster runs one command line and returns its exit status and output.
func rosterCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(ctxT(t), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func register(t *testing.T, cli *clientv3.Client, in roster.Instance, opts ...clientv3.OpOption) {
	t.Helper()
	v, err := roster.EncodeInstance(in)
	require.NoError(t, err)
	_, err = cli.Put(ctxT(t), "/roster/services/"+in.Service+"/"+in.ID, string(v), opts...)
	require.NoError(t, err)
}

func TestServices(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	ep := "--endpoints=" + m.Endpoints()[0]
	register(t, cli, roster.Instance{Service: "users", ID: "u1", Addr: "10.0.0.1:80"})
	register(t, cli, roster.Instance{Service: "users", ID: "u2", Addr: "10.0.0.2:80", Status: roster.StatusDraining})
	register(t, cli, roster.Instance{Service: "orders", ID: "o1", Addr: "10.0.0.3:80"})
	_, err := cli.Put(ctxT(t), "/roster/services/orders/junk", "not an instance")
	require.NoError(t, err)

	code, out, errOut := rosterCmd(t, "services", ep)
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^SERVICE\s+INSTANCES\s+SERVING\s+DRAINING\s+INVALID$`, lines[0])
	assert.Regexp(t, `^orders\s+1\s+1\s+0\s+1$`, lines[1])
	assert.Regexp(t, `^users\s+2\s+1\s+1\s+0$`, lines[2])

	code, out, _ = rosterCmd(t, "-o", "json", "services", ep)
	require.Equal(t, 0, code)
	var rows []serviceRow
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	assert.Equal(t, []serviceRow{
		{Service: "orders", Instances: 1, Serving: 1, Invalid: 1},
		{Service: "users", Instances: 2, Serving: 1, Draining: 1},
	}, rows)
}

func TestInstances(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	ep := "--endpoints=" + m.Endpoints()[0]
	lease, err := cli.Grant(ctxT(t), 60)
	require.NoError(t, err)
	register(t, cli, roster.Instance{Service: "users", ID: "u1", Addr: "10.0.0.1:80", Weight: 3,
		Metadata: map[string]string{"zone": "eu-1"}}, clientv3.WithLease(lease.ID))

	code, out, errOut := rosterCmd(t, "instances", "users", ep)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, fmt.Sprintf(`(?m)^u1\s+10\.0\.0\.1:80\s+serving\s+3\s+%x\s+zone=eu-1$`, lease.ID), out)

	code, out, _ = rosterCmd(t, "instances", "users", ep, "-o", "json")
	require.Equal(t, 0, code)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 1)
	assert.Equal(t, float64(3), rows[0]["weight"], "numbers are numbers")
	assert.Equal(t, float64(lease.ID), rows[0]["lease"])

	code, _, errOut = rosterCmd(t, "instances", ep)
	assert.Equal(t, 2, code, "a missing SERVICE is a usage error")
	assert.Contains(t, errOut, "SERVICE")
	code, _, _ = rosterCmd(t, "instances", "bad/name", ep)
	assert.Equal(t, 2, code)
}

// lines is a writer whose lines a test reads as they are written.
type lines struct {
	w  *io.PipeWriter
	ch chan string
}

func newLines() *lines {
	r, w := io.Pipe()
	l := &lines{w: w, ch: make(chan string, 100)}
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			l.ch <- s.Text()
		}
		close(l.ch)
	}()
	return l
}

func (l *lines) next(t *testing.T) string {
	t.Helper()
	select {
	case s, ok := <-l.ch:
		require.True(t, ok, "output ended")
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no output within 10 s")
		return ""
	}
}

func TestInstancesWatch(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	register(t, cli, roster.Instance{Service: "users", ID: "u1", Addr: "10.0.0.1:80"})
	out := newLines()
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"instances", "users", "--watch", "-o", "json", "--endpoints", m.Endpoints()[0]}, out.w, io.Discard)
		out.w.Close()
	}()
	var c change
	require.NoError(t, json.Unmarshal([]byte(out.next(t)), &c))
	assert.Equal(t, "present", c.Change)
	assert.Equal(t, "u1", c.ID)

	register(t, cli, roster.Instance{Service: "users", ID: "u2", Addr: "10.0.0.2:80"})
	require.NoError(t, json.Unmarshal([]byte(out.next(t)), &c))
	assert.Equal(t, "added", c.Change)
	assert.Equal(t, "10.0.0.2:80", c.Instance.Addr)
	register(t, cli, roster.Instance{Service: "users", ID: "u2", Addr: "10.0.0.2:80", Status: roster.StatusDraining})
	require.NoError(t, json.Unmarshal([]byte(out.next(t)), &c))
	assert.Equal(t, "updated", c.Change)
	assert.Equal(t, "draining", c.Instance.Status)
	_, err := cli.Delete(ctxT(t), "/roster/services/users/u1")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out.next(t)), &c))
	assert.Equal(t, "removed", c.Change)
	assert.Equal(t, "u1", c.ID)

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, "an interrupted watch ends normally")
	case <-time.After(5 * time.Second):
		t.Fatal("--watch did not stop within 5 s of the interrupt")
	}
}

// Elections and mutexes of etcd's own recipes show up: roster keeps their
// layout.
func TestLeadersAndLocks(t *testing.T) {
	m := etcdtest.Start(t)
	ep := "--endpoints=" + m.Endpoints()[0]
	ctx := ctxT(t)
	s1, err := concurrency.NewSession(m.Client(), concurrency.WithTTL(30))
	require.NoError(t, err)
	defer s1.Close()
	s2, err := concurrency.NewSession(m.Client(), concurrency.WithTTL(30))
	require.NoError(t, err)
	defer s2.Close()

	e1 := concurrency.NewElection(s1, "/roster/elections/cron")
	require.NoError(t, e1.Campaign(ctx, "host-a"))
	e2 := concurrency.NewElection(s2, "/roster/elections/cron")
	go e2.Campaign(ctx, "host-b") // waits behind host-a
	mu1 := concurrency.NewMutex(s1, "/roster/locks/invoices")
	require.NoError(t, mu1.Lock(ctx))
	mu2 := concurrency.NewMutex(s2, "/roster/locks/invoices")
	go mu2.Lock(ctx) // waits behind mu1

	var leaders []leaderRow
	require.Eventually(t, func() bool {
		code, out, _ := rosterCmd(t, "leaders", ep, "-o", "json")
		return code == 0 && json.Unmarshal([]byte(out), &leaders) == nil && len(leaders) == 1 && leaders[0].Candidates == 2
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "host-a", leaders[0].Leader)
	assert.Equal(t, int64(s1.Lease()), leaders[0].Lease)
	assert.Equal(t, e1.Rev(), leaders[0].Token)
	code, out, _ := rosterCmd(t, "leaders", ep)
	require.Equal(t, 0, code)
	assert.Regexp(t, fmt.Sprintf(`(?m)^cron\s+host-a\s+%d\s+%x\s+2$`, e1.Rev(), s1.Lease()), out)

	var locks []lockRow
	require.Eventually(t, func() bool {
		code, out, _ := rosterCmd(t, "locks", ep, "-o", "json")
		return code == 0 && json.Unmarshal([]byte(out), &locks) == nil && len(locks) == 1 && len(locks[0].Waiters) == 1
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "invoices", locks[0].Lock)
	assert.Equal(t, "mutex", locks[0].Kind)
	require.Len(t, locks[0].Holders, 1)
	assert.Equal(t, int64(s1.Lease()), locks[0].Holders[0].Lease)
	assert.Equal(t, mu1.Header().Revision, locks[0].Holders[0].Token)
	assert.Equal(t, int64(s2.Lease()), locks[0].Waiters[0].Lease)
	assert.Greater(t, locks[0].Waiters[0].Token, locks[0].Holders[0].Token)
}

func TestStatus(t *testing.T) {
	c := etcdtest.StartCluster(t, 3)
	ep := "--endpoints=" + strings.Join(c.Endpoints(), ",")
	code, out, errOut := rosterCmd(t, "status", ep)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "cluster healthy: 3 members")
	assert.Len(t, regexp.MustCompile(`(?m)^\S+\s+m\d\s+\S+\s+leader\s`).FindAllString(out, -1), 1, out)

	c.Follower().Kill()
	code, out, _ = rosterCmd(t, "status", ep, "-o", "json")
	require.Equal(t, 0, code, "a quorum still serves")
	var st clusterStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.True(t, st.Healthy)
	assert.Positive(t, st.Revision)
	answering := 0
	for _, m := range st.Members {
		if m.Answering {
			answering++
		}
	}
	assert.Equal(t, 2, answering)

	c.Follower().Kill() // no quorum left
	start := time.Now()
	code, out, errOut = rosterCmd(t, "status", ep, "--command-timeout=2s")
	assert.Equal(t, 1, code, "an unhealthy cluster exits 1")
	assert.Less(t, time.Since(start), 10*time.Second, "bounded by the command timeout")
	assert.Contains(t, out+errOut, "unhealthy")
}

func TestCommandLine(t *testing.T) {
	m := etcdtest.Start(t)
	register(t, m.Client(), roster.Instance{Service: "users", ID: "u1", Addr: "10.0.0.1:80"})

	t.Setenv("ETCDCTL_ENDPOINTS", m.Endpoints()[0])
	code, out, errOut := rosterCmd(t, "services")
	require.Equal(t, 0, code, "ETCDCTL_ENDPOINTS is read: %s", errOut)
	assert.Contains(t, out, "users")

	for _, args := range [][]string{
		{"nonsense"},
		{"services", "extra"},
		{"services", "-o", "yaml"},
		{"services", "--no-such-flag"},
		{"services", "--cert", "c.pem"},
		{"services", "--namespace", "no-slash"},
	} {
		code, _, errOut := rosterCmd(t, args...)
		assert.Equal(t, 2, code, "%v: usage error: %s", args, errOut)
		assert.NotEmpty(t, errOut, "%v says why", args)
	}
	code, out, _ = rosterCmd(t, "help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "instances SERVICE")

	// An etcd nobody answers at: a clear error within the timeouts.
	start := time.Now()
	code, _, errOut = rosterCmd(t, "services", "--endpoints", etcdtest.FreeAddr(t), "--command-timeout=1s", "--dial-timeout=500ms")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no answer from etcd")
	assert.Less(t, time.Since(start), 5*time.Second)
}

// drainStatus reads the instance's status as discovery would: from its value.
func drainStatus(t *testing.T, cli *clientv3.Client, service, id string) roster.Status {
	t.Helper()
	resp, err := cli.Get(ctxT(t), "/roster/services/"+service+"/"+id)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return ""
	}
	in, err := roster.DecodeInstance(service, id, resp.Kvs[0].Value)
	require.NoError(t, err)
	if in.Status == "" {
		return roster.StatusServing
	}
	return in.Status
}

func TestDrainUndrain(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	ep := "--endpoints=" + m.Endpoints()[0]
	inst := roster.Instance{Service: "users", ID: "u1", Addr: "10.0.0.1:80"}
	newReg := func() *registry.Registrar {
		r, err := registry.New(etcdtest.NewClient(t, m.Endpoints()...), registry.WithTTL(5*time.Second))
		require.NoError(t, err)
		require.NoError(t, r.Register(ctxT(t), inst))
		return r
	}
	r := newReg()
	defer func() { r.Close() }()
	require.Equal(t, roster.StatusServing, drainStatus(t, cli, "users", "u1"))

	code, out, errOut := rosterCmd(t, "drain", "users", "u1", "--reason", "kernel upgrade", ep)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "drain requested for users/u1")
	start := time.Now()
	require.Eventually(t, func() bool { return drainStatus(t, cli, "users", "u1") == roster.StatusDraining },
		time.Second, 5*time.Millisecond, "draining within 1 s")
	t.Logf("draining %v after roster drain returned", time.Since(start).Round(time.Millisecond))
	code, out, _ = rosterCmd(t, "instances", "users", ep)
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^u1\s+10\.0\.0\.1:80\s+draining \(drain requested\)`, out)

	// A registrar started again keeps the drain from its first write.
	require.NoError(t, r.Close())
	r = newReg()
	assert.Equal(t, roster.StatusDraining, drainStatus(t, cli, "users", "u1"), "registered draining")

	code, _, errOut = rosterCmd(t, "undrain", "users", "u1", ep)
	require.Equal(t, 0, code, errOut)
	require.Eventually(t, func() bool { return drainStatus(t, cli, "users", "u1") == roster.StatusServing },
		time.Second, 5*time.Millisecond, "serving again within 1 s")

	code, _, _ = rosterCmd(t, "drain", "users", ep)
	assert.Equal(t, 2, code, "drain takes SERVICE ID")
}
