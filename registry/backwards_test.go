package registry_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// forwarder passes TCP connections to a target that can be switched, which
// drops the connections open: the client then finds another etcd at the
// same address, as after a restore from a snapshot onto new machines.
type forwarder struct {
	l  net.Listener
	wg sync.WaitGroup

	mu     sync.Mutex
	target string
	conns  map[net.Conn]struct{}
}

func newForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &forwarder{l: l, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			f.wg.Go(func() { f.serve(in) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		f.switchTo("")
		f.wg.Wait()
	})
	return f
}

func (f *forwarder) endpoint() string { return "http://" + f.l.Addr().String() }

func (f *forwarder) serve(in net.Conn) {
	f.mu.Lock()
	target := f.target
	f.mu.Unlock()
	out, err := net.Dial("tcp", target)
	if err != nil {
		in.Close()
		return
	}
	f.mu.Lock()
	f.conns[in], f.conns[out] = struct{}{}, struct{}{}
	f.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(out, in); out.Close() })
	wg.Go(func() { io.Copy(in, out); in.Close() })
	wg.Wait()
}

// switchTo drops every connection; new ones go to target.
func (f *forwarder) switchTo(target string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.target = target
	for c := range f.conns {
		c.Close()
	}
	clear(f.conns)
}

// etcd's revisions go backwards under the registrar: it is moved to another
// cluster with less history, its lease gone. It restores everything there,
// and its watches, started again from the restore's revision instead of
// waiting for revisions the new cluster has not reached, still see a key
// deleted after the restore.
func TestRevisionsGoBackwards(t *testing.T) {
	ctx := testCtx(t)
	a, b := etcdtest.Start(t), etcdtest.Start(t)
	plainA, plainB := a.Client(), b.Client()
	fw := newForwarder(t, strings.TrimPrefix(a.Endpoints()[0], "http://"))
	r := newRegistrar(t, etcdtest.NewClient(t, fw.endpoint()), registry.WithTTL(testTTL))
	ids := registerN(t, r, "users", 3)
	for i := range 50 { // history that the other cluster lacks
		_, err := plainA.Put(ctx, fmt.Sprintf("/elsewhere/%d", i), "x")
		require.NoError(t, err)
	}
	old := r.Status().Lease

	fw.switchTo(strings.TrimPrefix(b.Endpoints()[0], "http://"))
	waitEvent(t, r, registry.EventLost, 3*testTTL)
	until(t, 10*time.Second, func() bool {
		st := r.Status()
		return st.Healthy && st.Lease != old && allUnder(t, plainB, "users", ids, st.Lease)
	}, "restored on the other cluster")
	resp, err := plainB.Get(ctx, "x")
	require.NoError(t, err)
	t.Logf("restored at revision %d of a cluster that had reached %d", resp.Header.Revision, 50+len(ids))

	took := repairTime(t, plainB, key("users", ids[1]))
	t.Logf("a key deleted after the restore came back after %v", took.Round(100*time.Microsecond))
	assert.Less(t, took, time.Second)
}
