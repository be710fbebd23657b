package lock_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/lock"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newMutex(t testing.TB, cli *clientv3.Client, name string, opts ...lock.Option) *lock.Mutex {
	t.Helper()
	m, err := lock.NewMutex(cli, name, opts...)
	if err != nil {
		t.Fatalf("NewMutex: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// keysUnder lists the keys under prefix, oldest first.
func keysUnder(t testing.TB, cli *clientv3.Client, prefix string) []string {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		t.Fatalf("get %s: %v", prefix, err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// waitKeys waits until exactly n keys are under prefix.
func waitKeys(t testing.TB, cli *clientv3.Client, prefix string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := keysUnder(t, cli, prefix)
		if len(got) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d keys under %s, have %q", n, prefix, got)
		}
		time.Sleep(5 * time.Millisecond) // polling etcd for a condition
	}
}

// result is the outcome of an acquisition run in the background.
type result struct {
	h   *lock.Hold
	err error
	at  time.Time
}

// async runs acquire in a goroutine; the returned channel yields its result.
func async(ctx context.Context, acquire func(context.Context) (*lock.Hold, error)) <-chan result {
	ch := make(chan result, 1)
	go func() {
		h, err := acquire(ctx)
		ch <- result{h, err, time.Now()}
	}()
	return ch
}

// receive waits up to d for r.
func receive(t testing.TB, ch <-chan result, d time.Duration) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("no result within %v", d)
		return result{}
	}
}

// pending asserts that nothing arrives on ch for d: the acquisition waits.
func pending(t testing.TB, ch <-chan result, d time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("acquired (err %v) while it should wait", r.err)
	case <-time.After(d):
	}
}

// closed waits up to d for ch to close.
func closed(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s not closed within %v", what, d)
	}
}
