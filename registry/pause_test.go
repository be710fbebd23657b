package registry_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
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

// registrarRole registers args[2] instances of service args[1] through etcd
// at args[0], with the test TTL, says "registered <lease>", then one line
// per event ("event <kind> <lease>"), until its input ends.
var registrarRole = etcdtest.Role("registrar", func(args []string, in *bufio.Scanner, out io.Writer) error {
	n, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{args[0]}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	r, err := registry.New(cli, registry.WithTTL(testTTL))
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		if err := r.Register(ctx, roster.Instance{Service: args[1], ID: fmt.Sprintf("i%03d", i), Addr: "10.0.0.1:8080"}); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", a...)
	}
	evctx, stop := context.WithCancel(context.Background())
	evs := r.Events(evctx)
	say("registered %x", int64(r.Status().Lease))
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range evs {
			say("event %s %x", strings.ReplaceAll(ev.Kind.String(), " ", "-"), int64(ev.Lease))
		}
	})
	for in.Scan() {
	}
	stop()
	wg.Wait()
	return nil
})

// nextEvent reads the child's lines up to the next event of kind and
// returns its lease.
func nextEvent(t *testing.T, c *etcdtest.Child, kind string, within time.Duration) (clientv3.LeaseID, []string) {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(within)
	for {
		line := c.Line(time.Until(deadline))
		seen = append(seen, line)
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "event" && f[1] == kind {
			l, err := strconv.ParseInt(f[2], 16, 64)
			require.NoError(t, err)
			return clientv3.LeaseID(l), seen
		}
	}
}

// Issue 11, the process-pause fault: a process registering instances is
// stopped (SIGSTOP) past its TTL, as a long GC pause or a frozen VM would
// stop it, and etcd expires its lease. Resumed, it reports the loss and
// registers everything again under a new lease; nothing is registered
// twice, and nothing is left of the old lease.
func TestProcessPausedPastItsTTL(t *testing.T) {
	m := etcdtest.Start(t)
	plain := m.Client()
	const n = 5
	c := etcdtest.StartChild(t, registrarRole, m.Endpoints()[0], "users", strconv.Itoa(n))
	f := strings.Fields(c.Line(30 * time.Second))
	require.Len(t, f, 2)
	require.Equal(t, "registered", f[0])
	l, err := strconv.ParseInt(f[1], 16, 64)
	require.NoError(t, err)
	old := clientv3.LeaseID(l)
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("i%03d", i))
	}
	require.True(t, allUnder(t, plain, "users", ids, old))

	c.Pause()
	paused := time.Now()
	until(t, 3*testTTL, func() bool { return len(keysIn(t, plain, roster.DefaultNamespace)) == 0 }, "etcd expires the sleeping process's lease")
	t.Logf("etcd expired the lease %v into the pause", time.Since(paused).Round(time.Millisecond))
	require.False(t, leaseAlive(t, plain, old))

	c.Resume()
	resumed := time.Now()
	lost, before := nextEvent(t, c, "lost", 10*time.Second)
	assert.Equal(t, old, lost, "the loss of the old lease is reported")
	assert.Len(t, before, 1, "the first thing it says after waking is the loss: %v", before)
	restored, _ := nextEvent(t, c, "restored", 10*time.Second)
	until(t, 5*time.Second, func() bool { return allUnder(t, plain, "users", ids, restored) }, "every instance back under the new lease")
	t.Logf("reported lost, then restored under lease %x; all %d instances back %v after the resume",
		int64(restored), n, time.Since(resumed).Round(time.Millisecond))
	assert.NotEqual(t, old, restored)
	assert.Len(t, keysIn(t, plain, roster.DefaultNamespace), n, "each instance once")
	leases, err := plain.Leases(testCtx(t))
	require.NoError(t, err)
	require.Len(t, leases.Leases, 1, "one lease: the new one")
	assert.Equal(t, restored, leases.Leases[0].ID)

	c.Kill()
}
