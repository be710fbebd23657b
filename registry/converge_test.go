package registry_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// Concurrent registers, updates, drains and deregisters while someone
// keeps revoking the lease and deleting keys: once the faults stop, what
// etcd holds is exactly what the registrar says it holds, under its live
// lease.
func TestConvergesUnderConcurrentWritesAndFaults(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client())

	stop := make(chan struct{})
	var (
		wg  sync.WaitGroup
		ops atomic.Int64
	)
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("i%02d", rng.IntN(12))
				opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				var err error
				switch rng.IntN(4) {
				case 0, 1:
					inst := instance("users", id)
					inst.Weight = rng.IntN(100)
					err = r.Register(opCtx, inst)
				case 2:
					err = r.Drain(opCtx, "users", id)
				case 3:
					err = r.Deregister(opCtx, "users", id)
				}
				cancel()
				ops.Add(1)
				if err != nil && !errors.Is(err, registry.ErrNotRegistered) {
					t.Errorf("%s: %v", id, err)
					return
				}
			}
		})
	}
	faults := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); faults++ {
		if faults%2 == 0 {
			if lease := r.Status().Lease; lease != 0 {
				plain.Revoke(ctx, lease)
			}
		} else {
			plain.Delete(ctx, key("users", fmt.Sprintf("i%02d", faults%12)))
		}
		<-time.After(50 * time.Millisecond) // the fault rate, not a synchronization
	}
	close(stop)
	wg.Wait()

	until(t, 5*time.Second, func() bool { return r.Status().Healthy }, "healthy after the faults")
	st := r.Status()
	want := map[string]roster.Instance{}
	for _, inst := range r.Instances() {
		want[key(inst.Service, inst.ID)] = inst
	}
	resp, err := plain.Get(ctx, "/roster/services/users/", clientv3.WithPrefix())
	require.NoError(t, err)
	got := map[string]roster.Instance{}
	for _, kv := range resp.Kvs {
		assert.Equal(t, int64(st.Lease), kv.Lease, "%s under the live lease", kv.Key)
		id := string(kv.Key[len("/roster/services/users/"):])
		got[string(kv.Key)] = decode(t, kv, "users", id)
	}
	assert.Equal(t, want, got, "etcd holds exactly the registrar's instances")
	assert.Equal(t, len(want), st.Instances)
	t.Logf("%d operations, %d faults; %d instances at the end", ops.Load(), faults, len(want))
	assert.Greater(t, ops.Load(), int64(faults), "the writers made progress through the faults")
}
