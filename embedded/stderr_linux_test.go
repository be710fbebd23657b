package embedded_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/embedded"
)

// TestQuietByDefault captures file descriptor 2 itself, not just os.Stderr:
// loggers made at init time (grpc's among them) hold the descriptor.
func TestQuietByDefault(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	stop := captureStderr(t)
	func() {
		s, err := embedded.Start(ctx)
		require.NoError(t, err)
		defer s.Close()
		cli, err := s.Client()
		require.NoError(t, err)
		defer cli.Close()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wch := cli.Watch(wctx, "k", clientv3.WithCreatedNotify())
		<-wch
		put(t, ctx, cli, "k", "v")
		<-wch
		// Close while the client's watch is still open.
		require.NoError(t, s.Close())
	}()
	out := stop()
	require.Empty(t, out, "a Start/Close cycle printed to stderr")
}

func captureStderr(t *testing.T) (stop func() string) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	saved, err := syscall.Dup(2)
	require.NoError(t, err)
	require.NoError(t, syscall.Dup3(int(w.Fd()), 2, 0))
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(&buf, r)
	}()
	return func() string {
		syscall.Dup3(saved, 2, 0)
		syscall.Close(saved)
		w.Close()
		<-done
		r.Close()
		return buf.String()
	}
}
