package embedded_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	m := embeddedtest.Start(t)
	cli := m.Client()
	const keys = 100
	for i := range keys {
		put(t, ctx, cli, fmt.Sprintf("k%03d", i), strconv.Itoa(i))
	}
	last, err := cli.Get(ctx, "k099")
	require.NoError(t, err)
	rev := last.Header.Revision

	var buf bytes.Buffer
	n, err := m.Server().Snapshot(ctx, &buf)
	require.NoError(t, err)
	require.EqualValues(t, buf.Len(), n)

	// etcd's format: a bolt database padded to 512 bytes, then its SHA-256.
	data := buf.Bytes()
	require.Equal(t, sha256.Size, len(data)%512)
	sum := sha256.Sum256(data[:len(data)-sha256.Size])
	require.Equal(t, sum[:], data[len(data)-sha256.Size:], "integrity hash")

	dir := t.TempDir()
	path := filepath.Join(dir, "snap.db")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	st, err := snapshot.NewV3(zap.NewNop()).Status(path)
	require.NoError(t, err)
	require.Equal(t, rev, st.Revision, "the snapshot holds the last write")
	require.GreaterOrEqual(t, st.TotalKey, keys)

	// A raw clientv3 snapshot stream, taken after ours, holds the same keys at
	// the same revision. Sizes are not compared: the file carries bolt's free
	// pages, and taking a snapshot commits the backend, which may grow it.
	rc, err := cli.Snapshot(ctx)
	require.NoError(t, err)
	rawPath := filepath.Join(dir, "raw.db")
	f, err := os.Create(rawPath)
	require.NoError(t, err)
	raw, err := io.Copy(f, rc)
	rc.Close()
	require.NoError(t, err)
	require.NoError(t, f.Close())
	t.Logf("Snapshot wrote %d bytes; a raw clientv3 stream carried %d", n, raw)
	rawSt, err := snapshot.NewV3(zap.NewNop()).Status(rawPath)
	require.NoError(t, err)
	require.Equal(t, rawSt.Revision, st.Revision)
	require.Equal(t, rawSt.TotalKey, st.TotalKey)

	opts := []embedded.Option{
		embedded.WithName("restored"),
		embedded.WithDataDir(filepath.Join(dir, "restored")),
		embedded.WithPeerAddr(etcdtest.FreeAddr(t)),
	}
	require.NoError(t, embedded.Restore(path, opts...))
	require.Error(t, embedded.Restore(path, opts...), "Restore never overwrites a data dir")

	restored, err := embedded.Start(ctx, opts...)
	require.NoError(t, err)
	defer restored.Close()
	rcli, err := restored.Client()
	require.NoError(t, err)
	defer rcli.Close()
	resp, err := rcli.Get(ctx, "k", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, keys)
	for i, kv := range resp.Kvs {
		require.Equal(t, strconv.Itoa(i), string(kv.Value))
	}
	require.Greater(t, resp.Header.Revision, rev+1_000_000-1,
		"revisions move past the old ones, so an old watcher is told to re-list")
	require.Equal(t, "restored", restored.Members()[0].Name)
	require.Equal(t, "http://"+hostport(t, restored.PeerURL()), restored.Members()[0].PeerURLs[0])
}

func TestRestoreRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	good := []embedded.Option{embedded.WithName("r"), embedded.WithPeerAddr(etcdtest.FreeAddr(t))}

	// A database whose hash does not match is refused, not restored.
	corrupt := filepath.Join(dir, "corrupt.db")
	junk := bytes.Repeat([]byte{7}, 512+sha256.Size)
	require.NoError(t, os.WriteFile(corrupt, junk, 0o600))
	err := embedded.Restore(corrupt, append(good, embedded.WithDataDir(filepath.Join(dir, "a")))...)
	require.Error(t, err)
	t.Logf("corrupt snapshot: %v", err)
	require.NoDirExists(t, filepath.Join(dir, "a", "member"), "no half-restored member left behind")

	err = embedded.Restore(corrupt, embedded.WithName("r"), embedded.WithDataDir(filepath.Join(dir, "b")))
	require.ErrorIs(t, err, embedded.ErrInvalidConfig, "no fixed peer address")
	err = embedded.Restore(corrupt, good...)
	require.ErrorIs(t, err, embedded.ErrInvalidConfig, "no data dir")
}
