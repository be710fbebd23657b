package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const workerTTL = 2 * time.Second

// demo is a gateway with its embedded etcd and worker processes.
type demo struct {
	t        *testing.T
	gw, wk   string
	etcdAddr string
	httpAddr string
	dataDir  string
	gateway  *proc
	workers  map[string]*proc
	// pollEvery is how often waitStatus asks; 20 ms unless set.
	pollEvery time.Duration
	polls     int // status requests waitStatus made
}

func newDemo(t *testing.T) *demo {
	gw, wk := build(t)
	d := &demo{t: t, gw: gw, wk: wk, etcdAddr: etcdtest.FreeAddr(t), httpAddr: etcdtest.FreeAddr(t),
		dataDir: t.TempDir(), workers: map[string]*proc{}}
	d.startGateway()
	return d
}

func (d *demo) base() string { return "http://" + d.httpAddr }

func (d *demo) startGateway() {
	d.gateway = start(d.t, "gateway", d.gw, "-listen", d.httpAddr,
		"-etcd-listen", d.etcdAddr, "-data-dir", d.dataDir)
	d.gateway.await(`gateway \S*\s?serving at`, 60*time.Second)
}

func (d *demo) startWorker(id string) {
	p := start(d.t, id, d.wk, "-etcd", d.etcdAddr, "-id", id, "-ttl", workerTTL.String())
	p.await(`worker \S+ serving at`, 30*time.Second)
	d.workers[id] = p
}

func (d *demo) status() gatewayStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := getStatus(ctx, d.base())
	require.NoError(d.t, err)
	return st
}

// waitStatus polls the status until cond holds and returns how long it took.
func (d *demo) waitStatus(within time.Duration, what string, cond func(gatewayStatus) bool) time.Duration {
	d.t.Helper()
	start := time.Now()
	every, timeout := 20*time.Millisecond, time.Second
	if d.pollEvery > 0 {
		every, timeout = d.pollEvery, 10*time.Second
	}
	for time.Since(start) < within {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		st, err := getStatus(ctx, d.base())
		cancel()
		d.polls++
		if err == nil && cond(st) {
			return time.Since(start)
		}
		time.Sleep(every) // polling the gateway's own view
	}
	d.t.Fatalf("%s: not within %v; last status %+v", what, within, d.status())
	return 0
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct{ ID string }
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	return body.ID, err
}

// load sends GETs through the gateway one after another until stopped and
// counts the failures.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       chan struct{}
	done       chan struct{}
}

func startLoad(url string) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			if _, err := get(url); err != nil {
				l.failed.Add(1)
				l.mu.Lock()
				l.errs = append(l.errs, err.Error())
				l.mu.Unlock()
			} else {
				l.ok.Add(1)
			}
		}
	}()
	return l
}

func (l *load) finish(t *testing.T, phase string) {
	t.Helper()
	close(l.stop)
	<-l.done
	t.Logf("%s: %d requests through the gateway, %d failed", phase, l.ok.Load(), l.failed.Load())
	require.Zero(t, l.failed.Load(), "%s: failed requests: %v", phase, l.errs)
	require.Positive(t, l.ok.Load())
}

func without(st gatewayStatus, id string) bool {
	_, ok := st.instances("worker")[id]
	return !ok
}

func TestDemoSurvivesWorkerAndGatewayFaults(t *testing.T) {
	d := newDemo(t)
	for _, id := range []string{"w1", "w2", "w3"} {
		d.startWorker(id)
	}

	// Requests through the gateway reach all three workers.
	seen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 3 && time.Now().Before(deadline) {
		if id, err := get(d.base() + "/svc/worker/hello"); err == nil {
			seen[id] = true
		}
	}
	require.Len(t, seen, 3, "requests reached %v", seen)

	// The critical section answers with the fencing token it held.
	resp, err := http.Post(d.base()+"/svc/worker/critical", "", nil)
	require.NoError(t, err)
	var crit struct {
		ID      string
		Token   int64
		Counter int64
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&crit))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Positive(t, crit.Token)
	require.EqualValues(t, 1, crit.Counter)

	leader := ""
	d.waitStatus(10*time.Second, "a leader", func(st gatewayStatus) bool { leader = st.leader("worker"); return leader != "" })
	others := []string{}
	for _, id := range []string{"w1", "w2", "w3"} {
		if id != leader {
			others = append(others, id)
		}
	}

	// kill -9 of a worker: no failed GET (the gateway retries on another
	// instance) and the instance leaves the status within TTL + 2 s.
	l := startLoad(d.base() + "/svc/worker/ping")
	d.workers[others[0]].kill()
	took := d.waitStatus(workerTTL+2*time.Second, "killed worker leaves", func(st gatewayStatus) bool { return without(st, others[0]) })
	t.Logf("kill -9: %s left the status after %v (TTL %v)", others[0], took, workerTTL)
	l.finish(t, "kill -9 of a worker")

	// SIGTERM: gone from discovery within 1 s, no request fails, exit 0.
	l = startLoad(d.base() + "/svc/worker/ping")
	gone := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for time.Since(start) < 5*time.Second {
			if st, err := getStatus(context.Background(), d.base()); err == nil && without(st, others[1]) {
				gone <- time.Since(start)
				return
			}
		}
		gone <- 5 * time.Second
	}()
	require.Zero(t, d.workers[others[1]].stop(10*time.Second), "worker exit code after SIGTERM")
	took = <-gone
	t.Logf("SIGTERM: %s left discovery after %v", others[1], took)
	require.Less(t, took, time.Second)
	l.finish(t, "SIGTERM of a worker")

	// The leader killed: a new leader in the status within TTL + 2 s.
	d.startWorker("w4")
	d.startWorker("w5")
	l = startLoad(d.base() + "/svc/worker/ping")
	d.workers[leader].kill()
	took = d.waitStatus(workerTTL+2*time.Second, "new leader", func(st gatewayStatus) bool {
		nl := st.leader("worker")
		return nl != "" && nl != leader
	})
	t.Logf("leader %s killed: new leader after %v (TTL %v)", leader, took, workerTTL)
	l.finish(t, "kill -9 of the leader")

	// The gateway restarted on its data dir: routable again within 5 s.
	require.Zero(t, d.gateway.stop(15*time.Second), "gateway exit code after SIGTERM")
	d.startGateway()
	start := time.Now()
	for {
		if _, err := get(d.base() + "/svc/worker/after-restart"); err == nil {
			break
		}
		require.Less(t, time.Since(start), 5*time.Second, "workers not routable 5 s after the gateway restarted")
		time.Sleep(20 * time.Millisecond) // polling the gateway
	}
	t.Logf("gateway restart: workers routable again %v after it was ready", time.Since(start))

	for _, id := range []string{"w4", "w5"} {
		require.Zero(t, d.workers[id].stop(15*time.Second), "%s exit code", id)
	}
	require.Zero(t, d.gateway.stop(15*time.Second), "gateway exit code")
}

// Workers stopped with SIGTERM exit 0 and revoke every lease they held
// (registration, candidacy, lock), so nothing of theirs waits out a TTL.
func TestWorkersLeaveNoLeaseBehind(t *testing.T) {
	d := newDemo(t)
	d.startWorker("a")
	d.startWorker("b")
	for range 4 {
		resp, err := http.Post(d.base()+"/svc/worker/critical", "", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{d.etcdAddr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	leases, err := cli.Leases(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, leases.Leases, "running workers hold leases")

	require.Zero(t, d.workers["a"].stop(15*time.Second), "exit code")
	require.Zero(t, d.workers["b"].stop(15*time.Second), "exit code")
	leases, err = cli.Leases(context.Background())
	require.NoError(t, err)
	require.Empty(t, leases.Leases, "leases left behind by stopped workers")
	require.Zero(t, d.gateway.stop(15*time.Second), "gateway exit code")
}
