package embedded_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	m := embeddedtest.Start(t, embedded.WithAuth("s3cret"))

	// Each login costs a bcrypt comparison, about a second under -race.
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
	}
	t.Run("FirstStart", check)
	t.Run("WrongPassword", func(t *testing.T) {
		cfg, err := m.Server().ClientConfig()
		require.NoError(t, err)
		cfg.Password = "wrong"
		wrong, err := clientv3.New(cfg)
		if err == nil {
			defer wrong.Close()
			_, err = wrong.Get(ctx, "k")
		}
		require.ErrorIs(t, err, rpctypes.ErrAuthFailed)
	})
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
	defer abortAll(servers)
	cfg, err := servers[0].ClientConfig()
	require.NoError(t, err)
	cfg.Endpoints = servers[2].Endpoints()
	cli, err := clientv3.New(cfg)
	require.NoError(t, err)
	defer cli.Close()
	put(t, ctx, cli, "k", "v")
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

// abortAll stops a cluster's members at once, sparing a test the second each
// graceful Close of a cluster member takes.
func abortAll(servers []*embedded.Server) {
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { s.Abort() })
	}
	wg.Wait()
}
