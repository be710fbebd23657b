package embedded_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	m := etcdtest.Start(t, embedded.WithAuth("s3cret"))

	check := func(t *testing.T) {
		t.Helper()
		cli := m.Client() // logs in as root
		put(t, ctx, cli, "k", "v")
		requireValue(t, ctx, cli, "k", "v")
		st, err := cli.AuthStatus(ctx)
		require.NoError(t, err)
		require.True(t, st.Enabled)

		anon := etcdtest.NewClient(t, m.Endpoints()...)
		_, err = anon.Get(ctx, "k")
		requirePermissionError(t, err)
		_, err = anon.Put(ctx, "k", "x")
		requirePermissionError(t, err)

		cfg, err := m.Server().ClientConfig()
		require.NoError(t, err)
		cfg.Password = "wrong"
		wrong, err := clientv3.New(cfg)
		if err == nil {
			defer wrong.Close()
			_, err = wrong.Get(ctx, "k")
		}
		require.ErrorIs(t, err, rpctypes.ErrAuthFailed)
	}
	t.Run("FirstStart", check)
	m.Restart()
	t.Run("AfterRestart", check)
}

// TestAuthCluster starts every member with the same password at once: one
// member enables auth, and the others must accept that they lost the race.
func TestAuthCluster(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	servers, err := embedded.StartCluster(ctx, 3, embedded.WithAuth("s3cret"))
	require.NoError(t, err)
	for _, s := range servers {
		defer s.Close()
	}
	for _, s := range servers {
		cli, err := s.Client()
		require.NoError(t, err)
		put(t, ctx, cli, "k", s.Name())
		cli.Close()
	}
	anon, err := clientv3.New(clientv3.Config{Endpoints: servers[1].Endpoints(), Logger: zap.NewNop()})
	require.NoError(t, err)
	defer anon.Close()
	_, err = anon.Get(ctx, "k")
	requirePermissionError(t, err)
}

func requirePermissionError(t *testing.T, err error) {
	t.Helper()
	require.True(t, errors.Is(err, rpctypes.ErrUserEmpty) || errors.Is(err, rpctypes.ErrPermissionDenied),
		"want a permission error, got %v", err)
}
