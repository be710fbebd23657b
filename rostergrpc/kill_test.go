package rostergrpc_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
	"github.com/rosterkit/roster/rostergrpc"
)

// retryConfig is the service config the package doc recommends: roster's
// balancer, and gRPC's retries of UNAVAILABLE for the idempotent methods,
// backing off over about a second: a retry that comes before the balancer
// has heard of a dead connection picks it again, and on a loaded machine
// five jittered retries within 0.1 s could all do so (once in CI).
func retryConfig(policy string) string {
	return `{"loadBalancingConfig":[{"` + policy + `":{}}],
	 "methodConfig":[{"name":[{"service":"grpc.testing.TestService"}],
	   "retryPolicy":{"maxAttempts":5,"initialBackoff":"0.05s","maxBackoff":"0.5s",
	     "backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}`
}

// backendRole is a backend in a process of its own, registered in etcd:
// args are the etcd endpoint, the service and the backend's name. It says
// "ready" once registered and serves until killed.
var backendRole = etcdtest.Role("backend", func(args []string, in *bufio.Scanner, out io.Writer) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: args[:1], DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	b, stop, err := serveBackend(args[2])
	if err != nil {
		return err
	}
	defer stop()
	reg, err := registry.New(cli, registry.WithTTL(roster.MinTTL))
	if err != nil {
		return err
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Register(ctx, b.instance(args[1], 0)); err != nil {
		return err
	}
	fmt.Fprintln(out, "ready")
	for in.Scan() {
	}
	return nil
})

// Acceptance 5: a backend killed with SIGKILL under load, or stopped,
// costs no failed call with the retry policy, whatever the balancer.
func TestKilledBackendCostsNoFailedCall(t *testing.T) {
	for _, policy := range []string{rostergrpc.P2CName, rostergrpc.WeightedName, rostergrpc.HashName} {
		for _, how := range []string{"kill -9", "Stop"} {
			if how == "Stop" && policy != rostergrpc.P2CName {
				continue
			}
			t.Run(policy+"/"+how, func(t *testing.T) {
				e := newEnv(t)
				for _, name := range []string{"s1", "s2"} {
					e.register(t, startBackend(t, name), "kill", 0)
				}
				var victim func()
				if how == "kill -9" {
					child := etcdtest.StartChild(t, backendRole, e.m.Endpoints()[0], "kill", "victim")
					require.Equal(t, "ready", child.Line(20*time.Second))
					victim = child.Kill
				} else {
					b := startBackend(t, "victim")
					e.register(t, b, "kill", 0)
					victim = b.srv.Stop
				}
				c := testgrpc.NewTestServiceClient(e.dial(t, "kill", retryConfig(policy)))
				reaches(t, c, "s1", "s2", "victim")

				ctx, stop := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				var ok, onVictim, failed atomic.Int64
				var firstErr atomic.Value
				for g := range 4 {
					wg.Go(func() {
						for i := 0; ctx.Err() == nil; i++ {
							name, err := call(rostergrpc.WithHashKey(context.Background(), fmt.Sprint(g, "/", i)), c)
							switch {
							case err != nil:
								failed.Add(1)
								firstErr.CompareAndSwap(nil, err)
							case name == "victim":
								onVictim.Add(1)
								fallthrough
							default:
								ok.Add(1)
							}
						}
					})
				}
				eventually(t, 5*time.Second, func() bool { return onVictim.Load() > 20 }, "the victim gets no load")
				victim()
				killedAt, atKill := time.Now(), ok.Load()
				eventually(t, 10*time.Second, func() bool { return ok.Load() > atKill+500 && time.Since(killedAt) > time.Second },
					"calls stopped after the backend died")
				stop()
				wg.Wait()
				t.Logf("%s, %s: %d calls succeeded (%d on the victim before it died, %d after), %d failed",
					policy, how, ok.Load(), onVictim.Load(), ok.Load()-atKill, failed.Load())
				assert.Zero(t, failed.Load(), "failed calls; first: %v", firstErr.Load())
			})
		}
	}
}
