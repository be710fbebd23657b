package discovery

import (
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/resolver"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// recordingCC is the gRPC side of a resolver, recording what it is told.
type recordingCC struct {
	resolver.ClientConn // methods not overridden are not called
	mu                  sync.Mutex
	states              int
	errs                []error
}

func (c *recordingCC) UpdateState(resolver.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states++
	return nil
}

func (c *recordingCC) ReportError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
}

func (c *recordingCC) seen() (int, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.states, append([]error(nil), c.errs...)
}

// A resolver whose cache ends under it (its Discoverer closed) reports
// that to gRPC instead of going quiet; one closed by gRPC reports nothing.
func TestResolverReportsItsCacheEnding(t *testing.T) {
	cli := etcdtest.Start(t).Client()
	d, err := New(cli)
	require.NoError(t, err)
	cc := &recordingCC{}
	r, err := NewResolverBuilder(d).Build(resolver.Target{URL: url.URL{Scheme: Scheme, Path: "/svc"}}, cc, resolver.BuildOptions{})
	require.NoError(t, err)
	eventually(t, func() bool { n, _ := cc.seen(); return n > 0 }, "no first update")

	require.NoError(t, d.Close())
	eventually(t, func() bool { _, errs := cc.seen(); return len(errs) == 1 }, "the end was not reported")
	_, errs := cc.seen()
	require.ErrorIs(t, errs[0], ErrClosed)
	r.Close()

	d2 := newDiscoverer(t, cli)
	cc2 := &recordingCC{}
	r2, err := NewResolverBuilder(d2).Build(resolver.Target{URL: url.URL{Scheme: Scheme, Path: "/svc"}}, cc2, resolver.BuildOptions{})
	require.NoError(t, err)
	eventually(t, func() bool { n, _ := cc2.seen(); return n > 0 }, "no first update")
	r2.Close()
	_, errs = cc2.seen()
	require.Empty(t, errs, "closing the resolver is not an error")
}
