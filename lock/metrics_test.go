package lock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe/recipetest"
	"github.com/rosterkit/roster/lock"
)

// Holds, waits, losses and refused fenced writes are counted; a loss is
// logged once, and nothing else is.
func TestMetricsAndLogsFollowHolds(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	direct := m.Client()
	meter, logs := recipetest.NewMeter(t), &recipetest.Records{}
	attrs := []attribute.KeyValue{attribute.String("kind", "lock"), attribute.String("name", "metrics")}
	mu := newMutex(t, m.Client(), "metrics", lock.WithTTL(2*time.Second),
		lock.WithMeterProvider(meter.Provider()), lock.WithLogger(logs.Logger()))
	value := func(metric string) float64 {
		v, _ := meter.Value(metric, attrs...)
		return v
	}
	h, err := mu.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, h.Release(ctx))
	h, err = mu.Lock(ctx)
	require.NoError(t, err)
	require.Equal(t, 2.0, value("roster.lock.holds"))
	require.Equal(t, 2.0, value("roster.lock.wait.duration"))
	require.Zero(t, value("roster.lock.losses"))

	_, err = direct.Revoke(ctx, h.Lease())
	require.NoError(t, err)
	select {
	case <-h.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the hold outlived its lease by 5 s")
	}
	require.ErrorIs(t, h.Err(), lock.ErrLost)
	_, err = h.Do(ctx, clientv3.OpPut("/t/x", "late"))
	require.ErrorIs(t, err, lock.ErrNotHeld)
	// Done is closed first; the loss is recorded right after, by the
	// goroutine that noticed it.
	require.Eventually(t, func() bool { return value("roster.lock.losses") == 1 }, time.Second, time.Millisecond)
	require.Equal(t, 1.0, value("roster.lock.fenced.refused"))
	require.Eventually(t, func() bool { return len(logs.All()) >= 2 }, time.Second, 5*time.Millisecond)
	require.Equal(t, 1, logs.Count("lock: hold lost"), "one record for the loss: %q", logs.All())
	require.Equal(t, 1, logs.Count("session: lease lost"), "and one for the lease it rode on: %q", logs.All())
	require.Len(t, logs.All(), 2, "nothing per acquisition or keep-alive: %q", logs.All())
}
