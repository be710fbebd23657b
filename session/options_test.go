package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster"
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

// The zero rule: zero means the default, negative is an error naming the
// option, and nothing panics on nil.
func TestOptionsZeroRule(t *testing.T) {
	cli := unconnected(t)
	for _, tc := range []struct {
		name    string
		opts    []session.Option
		wantTTL time.Duration
		wantErr error
		says    string
	}{
		{name: "none", wantTTL: roster.DefaultTTL},
		{name: "nil option", opts: []session.Option{nil}, wantTTL: roster.DefaultTTL},
		{name: "zero TTL", opts: []session.Option{session.WithTTL(0)}, wantTTL: roster.DefaultTTL},
		{name: "zero margin and interval", opts: []session.Option{session.WithMargin(0), session.WithKeepAliveInterval(0)}, wantTTL: roster.DefaultTTL},
		{name: "nil logger and meter provider", opts: []session.Option{session.WithLogger(nil), session.WithMeterProvider(nil)}, wantTTL: roster.DefaultTTL},
		{name: "TTL rounded up", opts: []session.Option{session.WithTTL(2500 * time.Millisecond)}, wantTTL: 3 * time.Second},
		{name: "negative TTL", opts: []session.Option{session.WithTTL(-time.Second)}, wantErr: roster.ErrInvalidOption, says: "WithTTL(-1s)"},
		{name: "TTL below minimum", opts: []session.Option{session.WithTTL(time.Second)}, wantErr: session.ErrInvalidTTL, says: "WithTTL(1s)"},
		{name: "negative margin", opts: []session.Option{session.WithMargin(-1)}, wantErr: roster.ErrInvalidOption, says: "WithMargin"},
		{name: "margin too large", opts: []session.Option{session.WithTTL(4 * time.Second), session.WithMargin(2 * time.Second)}, wantErr: session.ErrInvalidTTL, says: "margin"},
		{name: "negative interval", opts: []session.Option{session.WithKeepAliveInterval(-time.Second)}, wantErr: roster.ErrInvalidOption, says: "WithKeepAliveInterval"},
		// A first renewal due after the deadline it would renew.
		{name: "interval too long", opts: []session.Option{session.WithTTL(3 * time.Second), session.WithKeepAliveInterval(3 * time.Second)}, wantErr: session.ErrInvalidTTL, says: "interval"},
		{name: "interval fits", opts: []session.Option{session.WithTTL(3 * time.Second), session.WithKeepAliveInterval(time.Second)}, wantTTL: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := session.NewManager(cli, tc.opts...)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.ErrorIs(t, err, roster.ErrInvalidOption)
				require.Contains(t, err.Error(), tc.says)
				// New checks the same options before contacting etcd.
				_, err = session.New(context.Background(), cli, tc.opts...)
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantTTL, m.TTL())
			require.NoError(t, m.Close())
		})
	}
}

func TestNilClient(t *testing.T) {
	_, err := session.New(context.Background(), nil)
	require.ErrorIs(t, err, roster.ErrNilClient)
	_, err = session.NewManager(nil)
	require.ErrorIs(t, err, roster.ErrNilClient)
	//lint:ignore SA1012 a nil context must not panic either
	_, err = session.New(nil, nil)
	require.ErrorIs(t, err, roster.ErrNilClient)
}

// A closed Manager refuses everything, at once and without panicking.
func TestManagerCallsAfterClose(t *testing.T) {
	m, err := session.NewManager(unconnected(t))
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "idempotent")
	require.NoError(t, m.Shutdown(context.Background()))
	_, err = m.Session(context.Background())
	require.ErrorIs(t, err, session.ErrClosed)
	require.ErrorIs(t, err, roster.ErrClosed)
	require.NotErrorIs(t, err, roster.ErrLost)
	_, err = m.Claim("x")
	require.ErrorIs(t, err, session.ErrClosed)
}

func TestClaim(t *testing.T) {
	m, err := session.NewManager(unconnected(t))
	require.NoError(t, err)
	defer m.Close()
	release, err := m.Claim("/roster/elections/a/")
	require.NoError(t, err)
	_, err = m.Claim("/roster/elections/a/")
	require.ErrorIs(t, err, session.ErrNameInUse)
	require.Contains(t, err.Error(), "/roster/elections/a/")
	other, err := m.Claim("/roster/locks/a/")
	require.NoError(t, err, "another name")
	release()
	release() // idempotent: must not free a later claim
	again, err := m.Claim("/roster/elections/a/")
	require.NoError(t, err, "free again after release")
	release()
	_, err = m.Claim("/roster/elections/a/")
	require.ErrorIs(t, err, session.ErrNameInUse, "an old release does not free the new claim")
	again()
	other()
}
