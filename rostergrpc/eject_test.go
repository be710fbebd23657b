package rostergrpc_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/rosterkit/roster/rostergrpc"
)

// syncBuffer is a log destination for a test's slog handler.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// counter sums a counter's data points.
func counter(t *testing.T, r *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, p := range s.DataPoints {
					n += p.Value
				}
			}
		}
	}
	return n
}

// Acceptance 5: a backend that fails every call is ejected after the
// configured number of failures, by every balancer, gets calls again once
// its cool-down is over and it answers; the ejection is one log record and
// one count of roster.discovery.ejections.
func TestEjectionAndRecovery(t *testing.T) {
	const ejectAfter, ejectFor = 3, time.Second
	for _, policy := range []string{rostergrpc.WeightedName, rostergrpc.P2CName, rostergrpc.HashName} {
		t.Run(policy, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer mp.Shutdown(context.Background())
			logs := &syncBuffer{}
			e := newEnv(t, rostergrpc.WithMeterProvider(mp), rostergrpc.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
			bad := startBackend(t, "bad")
			for _, b := range []*backend{bad, startBackend(t, "ok1"), startBackend(t, "ok2")} {
				e.register(t, b, "ej", 0)
			}
			sc := fmt.Sprintf(`{"loadBalancingConfig":[{%q:{"ejectAfter":%d,"ejectFor":"%v"}}]}`, policy, ejectAfter, ejectFor)
			c := testgrpc.NewTestServiceClient(e.dial(t, "ej", sc))
			reaches(t, c, "bad", "ok1", "ok2")

			key := 0
			callOnce := func() error {
				key++
				_, err := call(rostergrpc.WithHashKey(context.Background(), fmt.Sprint("k", key)), c)
				return err
			}
			bad.fail.Store(true)
			start := time.Now()
			failures, calls := 0, 0
			var ejectedAt time.Time
			// roster_p2c may leave the bad backend alone for a while (if its
			// first calls looked slow, it is tried again only once its
			// latency is a tenth of the decay old, 1 s): call until it is
			// ejected.
			for failures < ejectAfter && time.Since(start) < 10*time.Second {
				calls++
				if callOnce() != nil {
					failures++
					ejectedAt = time.Now()
				}
			}
			require.Equal(t, ejectAfter, failures, "failed calls before the ejection")
			// Ejected: no call fails for half its cool-down.
			later := 0
			for time.Since(ejectedAt) < ejectFor/2 {
				calls++
				if callOnce() != nil {
					later++
				}
			}
			t.Logf("%s: %d calls in %v, %d failed (ejectAfter %d), then %d", policy, calls, time.Since(start).Round(time.Millisecond), failures, ejectAfter, later)
			assert.Zero(t, later, "calls failed after the ejection")
			assert.Equal(t, int64(1), counter(t, reader, "roster.discovery.ejections"))
			assert.Equal(t, 1, logs.count("instance ejected"), logs.b.String())

			// It answers again; after its cool-down it gets calls.
			bad.fail.Store(false)
			before := bad.calls.Load()
			eventually(t, 10*time.Second, func() bool { return callOnce() == nil && bad.calls.Load() > before+5 },
				"the backend got no calls after its cool-down")
			back := time.Since(ejectedAt)
			t.Logf("%s: calls again %v after the ejection (cool-down %v)", policy, back.Round(time.Millisecond), ejectFor)
			assert.GreaterOrEqual(t, back, ejectFor)
			assert.Equal(t, 1, logs.count("back from ejection"), logs.b.String())
			// State changes only: nothing per call in all these calls.
			assert.Equal(t, 2, logs.count("\n"), logs.b.String())
		})
	}
}
