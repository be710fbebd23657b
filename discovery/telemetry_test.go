package discovery_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// metrics collects from a manual reader and returns, by metric name, the
// data points' values keyed by their attributes.
func metrics(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			pts := map[string]float64{}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					pts[attrs(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					pts[attrs(p.Attributes)] = p.Value
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					pts[attrs(p.Attributes)] = float64(p.Value)
				}
			}
			out[m.Name] = pts
		}
	}
	return out
}

func attrs(s attribute.Set) string {
	var kv []string
	for _, a := range s.ToSlice() {
		kv = append(kv, string(a.Key)+"="+a.Value.String())
	}
	slices.Sort(kv)
	out := ""
	for i, s := range kv {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// After an ejection the ejection counter and the picker's instance gauge
// by status agree with the picker; the cache's gauges count its view.
func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	m := etcdtest.Start(t)
	cli := m.Client()
	for _, id := range []string{"a", "b", "c"} {
		putInstance(t, cli, instance("svc", id))
	}
	drain := instance("svc", "d")
	drain.Status = roster.StatusDraining
	putInstance(t, cli, drain)
	d := discoverer(t, cli, discovery.WithMeterProvider(mp))
	c := cache(t, d, "svc")
	require.NoError(t, c.WaitSynced(ctxT(t)))

	got := metrics(t, reader)
	assert.Equal(t, map[string]float64{"service=svc,status=serving": 3, "service=svc,status=draining": 1}, got["roster.discovery.instances"])
	assert.Equal(t, map[string]float64{"service=svc": 1}, got["roster.discovery.cache.lists"])
	assert.Equal(t, map[string]float64{"service=svc": 0}, got["roster.discovery.cache.restarts"])
	assert.Equal(t, map[string]float64{"service=svc": 0}, got["roster.discovery.cache.stale"])
	assert.Less(t, got["roster.discovery.cache.age"]["service=svc"], within.Seconds())

	clock := &fakeClock{now: time.Unix(1000, 0)}
	rr, err := discovery.NewRoundRobin(c, discovery.WithEjection(2, time.Minute), discovery.WithClock(clock.Now))
	require.NoError(t, err)
	picks := map[string]int{}
	failed := 0
	for failed < 2 {
		p, err := rr.Pick()
		require.NoError(t, err)
		picks[p.Instance.ID]++
		if p.Instance.ID == "b" {
			p.Done(errors.New("down"))
			failed++
		} else {
			p.Done(nil)
		}
	}
	require.True(t, rr.Ejected("b"))
	got = metrics(t, reader)
	assert.Equal(t, map[string]float64{"id=b,picker=roundrobin,service=svc": 1}, got["roster.discovery.ejections"])
	assert.Equal(t, map[string]float64{"picker=roundrobin,service=svc,status=pickable": 2, "picker=roundrobin,service=svc,status=ejected": 1},
		got["roster.discovery.picker.instances"])
	for id, n := range picks {
		assert.Equal(t, float64(n), got["roster.discovery.picks"]["id="+id+",picker=roundrobin,service=svc"], id)
	}
	assert.Equal(t, float64(2), got["roster.discovery.pick.failures"]["id=b,picker=roundrobin,service=svc"])

	clock.advance(time.Minute) // the cool-down ends
	assert.False(t, rr.Ejected("b"))
	got = metrics(t, reader)
	assert.Equal(t, map[string]float64{"picker=roundrobin,service=svc,status=pickable": 3, "picker=roundrobin,service=svc,status=ejected": 0},
		got["roster.discovery.picker.instances"])
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// capture is a slog handler that keeps the messages of Info records and
// above.
type capture struct {
	mu   sync.Mutex
	msgs []string
}

func (c *capture) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, r.Message)
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

func (c *capture) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.msgs
	c.msgs = nil
	return out
}

// One record per change of state — stale, re-listed, current again,
// ejected, back — and none per pick.
func TestLogsStateChangesOnly(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	direct := m.Client()
	for _, id := range []string{"a", "b"} {
		putInstance(t, direct, instance("svc", id))
	}
	logs := &capture{}
	d := discoverer(t, etcdtest.NewClient(t, proxy.Endpoint()), discovery.WithLogger(slog.New(logs)))
	c := cache(t, d, "svc")
	require.NoError(t, c.WaitSynced(ctxT(t)))
	assert.Empty(t, logs.take(), "a first sync is no change of state")

	restarts := c.Stats().Restarts
	proxy.Pause()
	eventually(t, func() bool { return errors.Is(c.Err(), discovery.ErrStale) }, "not stale")
	putInstance(t, direct, instance("svc", "c"))
	// The failed attempt that follows is no new state.
	eventually(t, func() bool { return c.Stats().Restarts > restarts }, "no restart")
	proxy.Restore()
	requireConverges(t, c, direct)
	eventually(t, func() bool { return c.Err() == nil }, "not current again")
	assert.Equal(t, []string{"discovery: view stale", "discovery: cache re-listed", "discovery: view current again"}, logs.take())

	clock := &fakeClock{now: time.Unix(1000, 0)}
	p2c, err := discovery.NewP2C(c, discovery.WithEjection(1, time.Minute), discovery.WithClock(clock.Now))
	require.NoError(t, err)
	for range 1000 {
		p, err := p2c.Pick()
		require.NoError(t, err)
		if p.Instance.ID == "a" && !p2c.Ejected("a") {
			p.Done(errors.New("down"))
		} else {
			p.Done(nil)
		}
	}
	assert.Equal(t, []string{"discovery: instance ejected"}, logs.take())
	clock.advance(time.Minute)
	for range 1000 {
		p, _ := p2c.Pick()
		p.Done(nil)
	}
	assert.Equal(t, []string{"discovery: instance back from ejection"}, logs.take())
}

// A picker needs no Close: its metric callback goes with it.
func TestPickerMetricsGoWithThePicker(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	src := staticSource{discovery.NewSnapshot("svc", instance("svc", "a"))}
	func() {
		p, err := discovery.NewRoundRobin(src, discovery.WithMeterProvider(mp))
		require.NoError(t, err)
		pk, err := p.Pick()
		require.NoError(t, err)
		pk.Done(nil)
		require.Equal(t, map[string]float64{"id=a,picker=roundrobin,service=svc": 1}, metrics(t, reader)["roster.discovery.picks"])
	}()
	eventually(t, func() bool {
		runtime.GC()
		return len(metrics(t, reader)["roster.discovery.picks"]) == 0
	}, "the dropped picker is still observed")
}
