package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs "grpc server" in the test's process until stop.
func startServer(t *testing.T, etcd, id string, delay time.Duration) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	cfg := serverConfig{etcd: []string{etcd}, listen: "127.0.0.1:0", service: "echo", id: id,
		ttl: 2 * time.Second, delay: delay, drainGrace: 200 * time.Millisecond, ready: func(string) { close(ready) }}
	out := &syncBuffer{}
	go func() { done <- serve(ctx, cfg, out) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server %s: %v\n%s", id, err, out)
	case <-time.After(30 * time.Second):
		t.Fatalf("server %s did not start", id)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

var summary = regexp.MustCompile(`(\d+) calls, (\d+) failed; answered by: (.*)`)

// answered parses the client's summary: calls by server.
func answered(t *testing.T, out string) map[string]int {
	t.Helper()
	m := summary.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	got := make(map[string]int)
	for _, part := range regexp.MustCompile(`(\S+) (\d+)`).FindAllStringSubmatch(m[3], -1) {
		n, _ := strconv.Atoi(part[2])
		got[part[1]] = n
	}
	return got
}

// The tour: three servers, one slow; the client's roster_p2c calls reach
// them all and spare the slow one; a server stopped gracefully while the
// client calls costs no call.
func TestTour(t *testing.T) {
	etcd := etcdtest.Start(t).Endpoints()[0]
	stopS1 := startServer(t, etcd, "s1", 0)
	startServer(t, etcd, "s2", 0)
	startServer(t, etcd, "slow", 20*time.Millisecond)

	var out syncBuffer
	code := run(context.Background(), []string{"client", "-etcd", etcd, "-n", "400", "-quiet"}, &out, io.Discard)
	require.Equal(t, 0, code, out.String())
	got := answered(t, out.String())
	t.Logf("roster_p2c over s1, s2 and a 20 ms server: %v", got)
	assert.Positive(t, got["s1"])
	assert.Positive(t, got["s2"])
	assert.Less(t, got["slow"], 400*15/100, "the slow server's share")

	out = syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"client", "-etcd", etcd, "-n", "300", "-interval", "2ms"}, &out, io.Discard)
	}()
	// The stop falls amid the calls.
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "call 30:") }, 20*time.Second, time.Millisecond)
	require.NoError(t, stopS1())
	require.Equal(t, 0, <-done, out.String())
	t.Logf("s1 stopped amid 300 calls: %s", summary.FindString(out.String()))
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	assert.Equal(t, 2, run(ctx, nil, io.Discard, io.Discard))
	assert.Equal(t, 2, run(ctx, []string{"proxy"}, io.Discard, io.Discard))
	assert.Equal(t, 2, run(ctx, []string{"server", "-no-such-flag"}, io.Discard, io.Discard))
	assert.Equal(t, 2, run(ctx, []string{"client", "-n", "many"}, io.Discard, io.Discard))
}
