package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// roster runs the roster CLI against the demo's etcd.
func (d *demo) roster(args ...string) string {
	d.t.Helper()
	args = append([]string{args[0], "--endpoints", d.etcdAddr}, args[1:]...)
	out, err := exec.Command(cli(d.t), args...).CombinedOutput()
	require.NoError(d.t, err, "roster %v: %s", args, out)
	return string(out)
}

func (s gatewayStatus) instance(service, id string) (status, reason string, requests int64) {
	for _, svc := range s.Services {
		if svc.Name == service {
			for _, in := range svc.Instances {
				if in.ID == id {
					return in.Status, in.Reason, in.Requests
				}
			}
		}
	}
	return "", "", 0
}

func (s gatewayStatus) candidates(election string) int {
	n := 0
	for _, e := range s.Elections {
		if e.Name == election {
			n = len(e.Candidates)
		}
	}
	return n
}

// An operator drains the leading worker with `roster drain`: within a
// second the status shows it draining with the operator's reason, it gets
// no new requests, and it leaves the election, so another worker leads.
// `roster undrain` puts it back in rotation and in the election. No
// request fails meanwhile.
func TestOperatorDrainOfTheLeader(t *testing.T) {
	d := newWorkersDemo(t, 3)
	leader := d.status().leader("worker")
	l := startLoad(d.base() + "/svc/worker/ping")

	began := time.Now()
	out := d.roster("drain", "--reason", "kernel upgrade", "worker", leader)
	require.Contains(t, out, "drain requested for worker/"+leader)
	d.waitStatus(time.Second, "draining within 1 s, with the reason", func(st gatewayStatus) bool {
		status, reason, _ := st.instance("worker", leader)
		return status == "draining" && strings.Contains(reason, "kernel upgrade")
	})
	t.Logf("roster drain: %s draining in the gateway's view after %v", leader, time.Since(began).Round(time.Millisecond))
	took := d.waitStatus(5*time.Second, "another worker leads", func(st gatewayStatus) bool {
		nl := st.leader("worker")
		return nl != "" && nl != leader && st.candidates("worker") == 2
	})
	t.Logf("the drained leader left the election: %s leads after %v", d.status().leader("worker"), took.Round(time.Millisecond))
	d.gateway.await(`worker `+leader+`: drain requested \(kernel upgrade\)`, 2*time.Second)

	// No new requests reach it while drained.
	_, _, before := d.status().instance("worker", leader)
	d.waitStatus(10*time.Second, "requests go on elsewhere", func(st gatewayStatus) bool { return st.Services[0].Requests > 200 })
	_, _, after := d.status().instance("worker", leader)
	require.Equal(t, before, after, "the drained worker got no new requests")

	d.roster("undrain", "worker", leader)
	d.waitStatus(2*time.Second, "serving again and back in the election", func(st gatewayStatus) bool {
		status, _, _ := st.instance("worker", leader)
		return status == "serving" && st.candidates("worker") == 3
	})
	l.finish(t, "drain and undrain of the leader")
	st := d.status()
	for _, kind := range []string{"drain", "draining", "undrain", "serving"} {
		require.True(t, st.hasEvent(kind, leader), "timeline has %q for %s: %+v", kind, leader, st.Timeline)
	}
	require.Zero(t, d.gateway.stop(30*time.Second))
}

// A worker whose registration lease is revoked from outside (as etcd does
// when a lease expires during a pause) is registered again by its
// registrar under a new lease: the timeline tells the loss and the
// restore, and the worker serves on.
func TestLeaseLostAndRestoredOnTheTimeline(t *testing.T) {
	d := newWorkersDemo(t, 1)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{d.etcdAddr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/roster/services/worker/worker-1")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	lease := clientv3.LeaseID(resp.Kvs[0].Lease)
	_, err = cli.Revoke(ctx, lease)
	require.NoError(t, err)
	took := d.waitStatus(5*time.Second, "the loss and the restore on the timeline", func(st gatewayStatus) bool {
		status, _, _ := st.instance("worker", "worker-1")
		return st.hasEvent("lost", "worker-1") && st.hasEvent("lease", "worker-1") && status == "serving"
	})
	t.Logf("lease %x revoked: worker-1 registered again under a new lease, seen by the gateway after %v", lease, took.Round(time.Millisecond))
	d.gateway.await(`worker worker-1: registration (lost|restored)`, time.Second)
	require.Zero(t, d.gateway.stop(30*time.Second))
}
