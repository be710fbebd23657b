package session_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe/recipetest"
	"github.com/rosterkit/roster/session"
)

// Every keep-alive is measured and none is logged; a loss is counted and
// logged once.
func TestMetricsAndLogs(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	meter, logs := recipetest.NewMeter(t), &recipetest.Records{}
	s, err := session.New(ctx, m.Client(), session.WithTTL(2*time.Second),
		session.WithMeterProvider(meter.Provider()), session.WithLogger(logs.Logger()))
	require.NoError(t, err)
	defer s.Close()
	value := func(name string, attrs ...attribute.KeyValue) float64 {
		v, _ := meter.Value(name, attrs...)
		return v
	}
	require.Eventually(t, func() bool { return value("roster.session.keepalive.duration") >= 3 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, value("roster.session.keepalive.duration"), value("roster.session.deadline.remaining"))
	require.Empty(t, logs.All(), "no record per keep-alive")

	_, err = m.Client().Revoke(ctx, s.Lease())
	require.NoError(t, err)
	require.ErrorIs(t, s.Renew(ctx), session.ErrLeaseGone)
	require.Equal(t, 1.0, value("roster.session.losses", attribute.String("cause", "lease_gone")))
	require.Equal(t, []string{"session: lease lost"}, logs.All())
}
