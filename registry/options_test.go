package registry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// The zero rule (issue 11): zero is the default, negative or out of range
// is an error wrapping roster.ErrInvalidOption that names the option and
// the value, and a nil client is roster.ErrNilClient. No input panics.
func TestOptionsZeroRule(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := m.Client()
	cases := []struct {
		name    string
		opts    []registry.Option
		wantErr []error // nil: accepted
		mention string
	}{
		{"no options", nil, nil, ""},
		{"nil option", []registry.Option{nil}, nil, ""},
		{"zero TTL", []registry.Option{registry.WithTTL(0)}, nil, ""},
		{"minimum TTL", []registry.Option{registry.WithTTL(roster.MinTTL)}, nil, ""},
		{"negative TTL", []registry.Option{registry.WithTTL(-time.Second)}, []error{roster.ErrInvalidOption}, "WithTTL(-1s)"},
		{"TTL below the minimum", []registry.Option{registry.WithTTL(time.Second)}, []error{roster.ErrInvalidOption}, "WithTTL(1s)"},
		{"huge TTL", []registry.Option{registry.WithTTL(1<<63 - 1)}, []error{roster.ErrInvalidOption}, "maximum"},
		{"empty namespace", []registry.Option{registry.WithNamespace("")}, nil, ""},
		{"bad namespace", []registry.Option{registry.WithNamespace("roster/")}, []error{roster.ErrInvalidOption, roster.ErrInvalidName}, "namespace"},
		{"namespace with a space", []registry.Option{registry.WithNamespace("/a b")}, []error{roster.ErrInvalidOption, roster.ErrInvalidName}, "namespace"},
		{"zero backoff", []registry.Option{registry.WithBackoff(0, 0)}, nil, ""},
		{"negative backoff min", []registry.Option{registry.WithBackoff(-time.Millisecond, 0)}, []error{roster.ErrInvalidOption}, "WithBackoff(-1ms, 0s)"},
		{"negative backoff max", []registry.Option{registry.WithBackoff(0, -time.Second)}, []error{roster.ErrInvalidOption}, "WithBackoff(0s, -1s)"},
		{"backoff max below min", []registry.Option{registry.WithBackoff(time.Second, time.Millisecond)}, []error{roster.ErrInvalidOption}, "max below min"},
		{"nil logger and meters", []registry.Option{registry.WithLogger(nil), registry.WithMeterProvider(nil)}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := registry.New(cli, c.opts...)
			if c.wantErr == nil {
				require.NoError(t, err)
				require.NoError(t, r.Close())
				return
			}
			require.Error(t, err)
			assert.Nil(t, r)
			for _, want := range c.wantErr {
				assert.ErrorIs(t, err, want)
			}
			assert.Contains(t, err.Error(), c.mention)
			t.Log(err)
		})
	}

	// Zero TTL is roster.DefaultTTL, as etcd sees it, in the default
	// namespace.
	r := newRegistrar(t, cli, registry.WithTTL(0), registry.WithNamespace(""))
	require.NoError(t, r.Register(ctx, instance("users", "a")))
	ttl, err := cli.TimeToLive(ctx, r.Status().Lease)
	require.NoError(t, err)
	assert.Equal(t, int64(roster.DefaultTTL/time.Second), ttl.GrantedTTL)
	assert.NotNil(t, get(t, cli, "users", "a"))

	_, err = registry.New(nil, registry.WithTTL(-1))
	assert.ErrorIs(t, err, roster.ErrNilClient, "a nil client first")
}
