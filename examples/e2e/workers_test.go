package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// newWorkersDemo starts the demo as the README does, with -workers n: one
// gateway process that starts n worker processes of its own executable.
func newWorkersDemo(t *testing.T, n int, extra ...string) *demo {
	gw, wk := build(t)
	d := &demo{t: t, gw: gw, wk: wk, etcdAddr: etcdtest.FreeAddr(t), httpAddr: etcdtest.FreeAddr(t),
		dataDir: t.TempDir(), workers: map[string]*proc{}}
	args := []string{"-listen", d.httpAddr, "-workers", strconv.Itoa(n), "-ttl", workerTTL.String()}
	if len(extra) == 0 {
		args = append(args, "-etcd-listen", d.etcdAddr, "-data-dir", d.dataDir)
	}
	args = append(args, extra...)
	d.gateway = start(t, "gateway", gw, args...)
	d.gateway.await(`gateway serving at`, 60*time.Second)
	for i := 1; i <= n; i++ {
		d.gateway.await(fmt.Sprintf(`started worker worker-%d \(pid \d+\)`, i), 10*time.Second)
	}
	d.waitStatus(30*time.Second, "every worker serving and a leader", func(st gatewayStatus) bool {
		serving := 0
		for _, s := range st.instances("worker") {
			if s == "serving" {
				serving++
			}
		}
		return serving == n && st.leader("worker") != ""
	})
	return d
}

// posts sends POST /critical through the gateway from one client, one
// after another, until stopped, and sorts the failures: those whose
// connection to the instance was refused (which the gateway must retry
// elsewhere, whatever the method) and the others (a POST in flight on a
// worker killed under it may fail: it cannot be sent twice).
type posts struct {
	ok, refused, other atomic.Int64
	mu                 sync.Mutex
	errs               []string
	stop, done         chan struct{}
}

func startPosts(url string) *posts {
	p := &posts{stop: make(chan struct{}), done: make(chan struct{})}
	c := &http.Client{Timeout: 20 * time.Second}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			resp, err := c.Post(url, "", nil)
			var body []byte
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
				}
			}
			switch {
			case err == nil:
				p.ok.Add(1)
			case strings.Contains(err.Error(), "connection refused"):
				p.refused.Add(1)
			default:
				p.other.Add(1)
			}
			if err != nil {
				p.mu.Lock()
				p.errs = append(p.errs, err.Error())
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *posts) finish(t *testing.T, phase string) {
	t.Helper()
	close(p.stop)
	<-p.done
	t.Logf("%s: %d POSTs through the gateway, %d failed with a refused connection, %d failed otherwise: %v",
		phase, p.ok.Load(), p.refused.Load(), p.other.Load(), p.errs)
	require.Zero(t, p.refused.Load(), "%s: POSTs failed although their connection was refused (never sent): %v", phase, p.errs)
	require.Positive(t, p.ok.Load())
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Acceptance 1 of the demo: with -workers 3, SIGKILL of the leading
// worker's process shows a new leader in /_roster/status within TTL + 1 s,
// with no failed GET and no failed POST whose connection was refused.
// Then a graceful stop of the gateway stops its workers, which deregister.
func TestWorkersProcessesLeaderKilled(t *testing.T) {
	d := newWorkersDemo(t, 3)
	st := d.status()
	require.Len(t, st.Gateway.Workers, 3, "the status lists the worker processes")
	pids := map[string]int{}
	for _, w := range st.Gateway.Workers {
		require.Equal(t, "running", w.State)
		require.True(t, alive(w.PID), "worker %s pid %d runs", w.ID, w.PID)
		require.Equal(t, w.PID, st.pidOf("worker", w.ID), "the instance registered the process's pid")
		pids[w.ID] = w.PID
	}
	leader := st.leader("worker")
	require.Contains(t, pids, leader)

	gets := startLoad(d.base() + "/svc/worker/ping")
	ps := startPosts(d.base() + "/svc/worker/critical")
	// Let both loads run on all three workers before the kill.
	d.waitStatus(10*time.Second, "traffic on every worker", func(st gatewayStatus) bool {
		for _, svc := range st.Services {
			if svc.Name != "worker" {
				continue
			}
			for _, in := range svc.Instances {
				if in.Requests == 0 {
					return false
				}
			}
			return true
		}
		return false
	})
	require.NoError(t, syscall.Kill(pids[leader], syscall.SIGKILL))
	took := d.waitStatus(workerTTL+time.Second, "a new leader within TTL + 1 s", func(st gatewayStatus) bool {
		nl := st.leader("worker")
		return nl != "" && nl != leader
	})
	t.Logf("leading worker %s (pid %d) killed with SIGKILL: new leader %s in /_roster/status after %v (TTL %v)",
		leader, pids[leader], d.status().leader("worker"), took.Round(time.Millisecond), workerTTL)
	d.waitStatus(workerTTL+2*time.Second, "the killed worker gone", func(st gatewayStatus) bool { return without(st, leader) })
	gets.finish(t, "kill -9 of the leading worker")
	ps.finish(t, "kill -9 of the leading worker")
	d.gateway.await(fmt.Sprintf(`worker %s \(pid %d\) signal: killed`, leader, pids[leader]), 5*time.Second)

	st = d.status()
	require.True(t, st.hasEvent("lost", leader), "the timeline tells the killed worker left without draining: %+v", st.Timeline)
	require.True(t, st.hasEvent("leader", ""), "the timeline tells of the new leader")
	require.True(t, st.hasEvent("ejected", leader), "the timeline tells the gateway ejected the dead worker after failed calls")

	// A graceful stop: the gateway stops its workers, which drain,
	// deregister and resign, then exits 0.
	require.Zero(t, d.gateway.stop(30*time.Second), "gateway exit code")
	for id, pid := range pids {
		require.False(t, alive(pid), "worker %s (pid %d) outlived the gateway", id, pid)
	}
	out := strings.Join(d.gateway.output(), "\n")
	for id := range pids {
		if id != leader {
			require.Contains(t, out, "worker "+id+" stopped", "worker %s stopped gracefully", id)
		}
	}
}

// A gateway killed with SIGKILL does not leave its workers behind: they
// see their pipe from it close and stop gracefully, deregistering (etcd
// runs apart here, so that it outlives the gateway).
func TestWorkersStopWhenGatewayDies(t *testing.T) {
	m := etcdtest.Start(t)
	d := newWorkersDemo(t, 2, "-etcd", m.Endpoints()[0])
	st := d.status()
	d.gateway.kill()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, w := range st.Gateway.Workers {
		for alive(w.PID) {
			require.NoError(t, ctx.Err(), "worker %s (pid %d) outlived its gateway", w.ID, w.PID)
			time.Sleep(20 * time.Millisecond) // polling the process table
		}
	}
	out := strings.Join(d.gateway.output(), "\n")
	for _, w := range st.Gateway.Workers {
		require.Contains(t, out, "worker "+w.ID+" stopped", "worker %s stopped gracefully", w.ID)
	}
	resp, err := m.Client().Get(ctx, "/roster/services/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count, "the workers deregistered")
}
