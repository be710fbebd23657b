package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/lock"
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

// The zero rule, for every kind of lock: zero means the default, negative
// (or contradictory) is an error naming the option, nil is harmless.
func TestOptionsZeroRule(t *testing.T) {
	cli := unconnected(t)
	mgr, err := session.NewManager(cli)
	require.NoError(t, err)
	defer mgr.Close()
	kinds := map[string]func(opts ...lock.Option) (interface{ Close() error }, error){
		"mutex": func(opts ...lock.Option) (interface{ Close() error }, error) {
			return lock.NewMutex(cli, "zero", opts...)
		},
		"semaphore": func(opts ...lock.Option) (interface{ Close() error }, error) {
			return lock.NewSemaphore(cli, "zero", 2, opts...)
		},
		"rwmutex": func(opts ...lock.Option) (interface{ Close() error }, error) {
			return lock.NewRWMutex(cli, "zero", opts...)
		},
	}
	for _, tc := range []struct {
		name    string
		opts    []lock.Option
		wantErr error
		says    string
	}{
		{name: "none"},
		{name: "nil option", opts: []lock.Option{nil}},
		{name: "zeros", opts: []lock.Option{lock.WithTTL(0), lock.WithNamespace(""), lock.WithLogger(nil),
			lock.WithMeterProvider(nil), lock.WithSessionManager(nil)}},
		{name: "zero TTL with a manager", opts: []lock.Option{lock.WithTTL(0), lock.WithSessionManager(mgr)}},
		{name: "negative TTL", opts: []lock.Option{lock.WithTTL(-time.Second)}, wantErr: roster.ErrInvalidOption, says: "WithTTL(-1s)"},
		{name: "TTL below minimum", opts: []lock.Option{lock.WithTTL(time.Second)}, wantErr: session.ErrInvalidTTL, says: "WithTTL(1s)"},
		{name: "TTL and manager", opts: []lock.Option{lock.WithTTL(5 * time.Second), lock.WithSessionManager(mgr)},
			wantErr: roster.ErrInvalidOption, says: "WithSessionManager"},
		{name: "bad namespace", opts: []lock.Option{lock.WithNamespace("roster/")}, wantErr: roster.ErrInvalidName, says: "namespace"},
	} {
		for kind, open := range kinds {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				l, err := open(tc.opts...)
				if tc.wantErr != nil {
					require.ErrorIs(t, err, tc.wantErr)
					require.Contains(t, err.Error(), tc.says)
					return
				}
				require.NoError(t, err)
				require.NoError(t, l.Close())
			})
		}
	}
	for _, limit := range []int{0, -1} {
		_, err := lock.NewSemaphore(cli, "zero", limit)
		require.ErrorIs(t, err, lock.ErrInvalidLimit)
		require.ErrorIs(t, err, roster.ErrInvalidOption)
	}
}

// Nil inputs and calls after Close return errors and never panic.
func TestNilInputsAndCallsAfterClose(t *testing.T) {
	_, err := lock.NewMutex(nil, "x")
	require.ErrorIs(t, err, roster.ErrNilClient)
	_, err = lock.NewSemaphore(nil, "x", 1)
	require.ErrorIs(t, err, roster.ErrNilClient)
	_, err = lock.NewRWMutex(nil, "x")
	require.ErrorIs(t, err, roster.ErrNilClient)
	require.ErrorIs(t, lock.WithLock(context.Background(), nil, func(context.Context) error { return nil }), roster.ErrInvalidOption)

	cli := unconnected(t)
	mu, err := lock.NewMutex(cli, "closed")
	require.NoError(t, err)
	sem, err := lock.NewSemaphore(cli, "closed", 2)
	require.NoError(t, err)
	rw, err := lock.NewRWMutex(cli, "closed")
	require.NoError(t, err)
	require.ErrorIs(t, lock.WithLock(context.Background(), mu.Lock, nil), roster.ErrInvalidOption)
	for _, c := range []interface {
		Close() error
		Shutdown(context.Context) error
	}{mu, sem, rw} {
		require.NoError(t, c.Close())
		require.NoError(t, c.Close(), "idempotent")
		require.NoError(t, c.Shutdown(context.Background()))
	}
	ctx := context.Background()
	for name, call := range map[string]func(context.Context) (*lock.Hold, error){
		"Lock": mu.Lock, "TryLock": mu.TryLock, "Acquire": sem.Acquire, "TryAcquire": sem.TryAcquire,
		"RLock": rw.RLock, "TryRLock": rw.TryRLock, "RW Lock": rw.Lock, "RW TryLock": rw.TryLock,
	} {
		_, err := call(ctx)
		require.ErrorIs(t, err, lock.ErrClosed, name)
		require.ErrorIs(t, err, roster.ErrClosed, name)
		require.NotErrorIs(t, err, roster.ErrLost, name)
		_, err = call(nil) // a nil context must not panic either
		require.ErrorIs(t, err, lock.ErrClosed, name)
	}
	require.ErrorIs(t, mu.Unlock(ctx), lock.ErrNotHeld)
}
