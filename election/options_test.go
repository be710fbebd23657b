package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/session"
)

// unconnected is a client of an address nobody serves: enough for checks
// that must not contact etcd.
func unconnected(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// The zero rule: zero means the default, negative (or contradictory) is an
// error naming the option, nil is harmless.
func TestOptionsZeroRule(t *testing.T) {
	cli := unconnected(t)
	mgr, err := session.NewManager(cli)
	require.NoError(t, err)
	defer mgr.Close()
	for _, tc := range []struct {
		name    string
		opts    []election.Option
		wantErr error
		says    string
	}{
		{name: "none"},
		{name: "nil option", opts: []election.Option{nil}},
		{name: "zeros", opts: []election.Option{election.WithTTL(0), election.WithBackoff(0, 0), election.WithProgressInterval(0),
			election.WithNamespace(""), election.WithLogger(nil), election.WithMeterProvider(nil), election.WithSessionManager(nil)}},
		{name: "zero TTL with a manager", opts: []election.Option{election.WithTTL(0), election.WithSessionManager(mgr)}},
		{name: "backoff min only", opts: []election.Option{election.WithBackoff(10*time.Second, 0)}},
		{name: "negative TTL", opts: []election.Option{election.WithTTL(-time.Second)}, wantErr: roster.ErrInvalidOption, says: "WithTTL(-1s)"},
		{name: "TTL below minimum", opts: []election.Option{election.WithTTL(time.Second)}, wantErr: session.ErrInvalidTTL, says: "WithTTL(1s)"},
		{name: "TTL and manager", opts: []election.Option{election.WithTTL(5 * time.Second), election.WithSessionManager(mgr)},
			wantErr: roster.ErrInvalidOption, says: "WithSessionManager"},
		{name: "negative backoff", opts: []election.Option{election.WithBackoff(-1, time.Second)}, wantErr: roster.ErrInvalidOption, says: "WithBackoff"},
		{name: "backoff max below min", opts: []election.Option{election.WithBackoff(time.Second, time.Millisecond)}, wantErr: roster.ErrInvalidOption, says: "max below min"},
		{name: "negative progress interval", opts: []election.Option{election.WithProgressInterval(-time.Second)}, wantErr: roster.ErrInvalidOption, says: "WithProgressInterval"},
		{name: "progress interval below the minimum", opts: []election.Option{election.WithProgressInterval(time.Millisecond)}, wantErr: roster.ErrInvalidOption, says: "WithProgressInterval"},
		{name: "bad namespace", opts: []election.Option{election.WithNamespace("no-slash")}, wantErr: roster.ErrInvalidName, says: "namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := election.New(cli, "zero", tc.opts...)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Contains(t, err.Error(), tc.says)
				return
			}
			require.NoError(t, err)
			require.NoError(t, e.Close())
		})
	}
}

// Nil and empty inputs, and calls after Close, return errors and never
// panic.
func TestNilInputsAndCallsAfterClose(t *testing.T) {
	_, err := election.New(nil, "x")
	require.ErrorIs(t, err, roster.ErrNilClient)
	cli := unconnected(t)
	for _, name := range []string{"", "a/b", ".."} {
		_, err := election.New(cli, name)
		require.ErrorIs(t, err, roster.ErrInvalidName, "%q", name)
	}
	e, err := election.New(cli, "closed")
	require.NoError(t, err)
	require.ErrorIs(t, e.Run(context.Background(), "v", nil), roster.ErrInvalidOption)
	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "idempotent")
	require.NoError(t, e.Shutdown(context.Background()))
	//lint:ignore SA1012 a nil context must not panic either
	_, err = e.Campaign(nil, "v")
	require.ErrorIs(t, err, election.ErrClosed)
	require.ErrorIs(t, err, roster.ErrClosed)
	require.NotErrorIs(t, err, roster.ErrLost)
	require.ErrorIs(t, e.Run(context.Background(), "v", func(context.Context, *election.Leadership) error { return nil }), election.ErrClosed)
	_, open := <-e.Observe(context.Background())
	require.False(t, open, "Observe on a closed Election: a closed channel")
}
