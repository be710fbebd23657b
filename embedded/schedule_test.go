package embedded_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// TestScheduledSnapshots takes snapshots while keys are written: the last
// three are kept, and each restores, with Restore and with etcdutl, to a
// member serving exactly the keys of its revision.
func TestScheduledSnapshots(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 120*time.Second)
	dir := t.TempDir()
	leftover := filepath.Join(dir, ".roster-20260101T000000.000Z.db.12345.part") // a crash's
	foreign := []string{filepath.Join(dir, "other.db"), filepath.Join(dir, ".other-20260101T000000.000Z.db.1.part")}
	for _, p := range append(foreign, leftover) {
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	h := &recordingHandler{}
	const keep, taken = 3, 5
	m := embeddedtest.Start(t, embedded.WithLogger(slog.New(h)),
		embedded.WithSnapshots(embedded.SnapshotSchedule{Dir: dir, Interval: 300 * time.Millisecond, Keep: keep}))
	cli := m.Client()

	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var written []writtenKey // in revision order
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; wctx.Err() == nil; i++ {
			k := fmt.Sprintf("/k/%04d", i)
			if resp, err := cli.Put(wctx, k, fmt.Sprint(i)); err == nil {
				written = append(written, writtenKey{k + "=" + fmt.Sprint(i), resp.Header.Revision})
			}
			select {
			case <-wctx.Done():
			case <-tick.C: // the writer's pace
			}
		}
	})
	require.Eventually(t, func() bool { return m.Server().Status().Snapshots.Count >= taken }, 60*time.Second, 10*time.Millisecond)
	stop()
	wg.Wait()
	st := m.Server().Status().Snapshots
	m.Stop() // no more snapshots from here on
	require.Zero(t, st.Failures)
	require.NoError(t, st.Err)
	// A snapshot may have finished between Status and Stop: the log holds
	// every snapshot counted, in order, and perhaps that one more.
	paths := h.attrs("snapshot taken", "path")
	require.GreaterOrEqual(t, len(paths), st.Count, "each snapshot is logged")
	require.LessOrEqual(t, len(paths), st.Count+1)
	require.Equal(t, st.LastPath, paths[st.Count-1])
	var kept []string
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		kept = append(kept, filepath.Join(dir, e.Name()))
	}
	want := append(slices.Clone(paths[len(paths)-keep:]), foreign...)
	require.ElementsMatch(t, want, kept, "the last %d snapshots, the foreign files, no leftover part", keep)

	for i, path := range paths[len(paths)-keep:] {
		info, err := snapshot.NewV3(zap.NewNop()).Status(path)
		require.NoError(t, err)
		var want []string
		for _, w := range written {
			if w.rev <= info.Revision {
				want = append(want, w.kv)
			}
		}
		require.NotEmpty(t, want)

		peer, data := etcdtest.FreeAddr(t), filepath.Join(t.TempDir(), "restored")
		opts := []embedded.Option{embedded.WithName("restored"), embedded.WithDataDir(data), embedded.WithPeerAddr(peer)}
		if i == 0 {
			// etcd's own tool reads the file as well.
			out, err := exec.Command("go", "tool", "etcdutl", "snapshot", "restore", path,
				"--data-dir", data,
				"--name", "restored",
				"--initial-cluster", "restored=http://"+peer,
				"--initial-advertise-peer-urls", "http://"+peer).CombinedOutput()
			require.NoError(t, err, "%s", out)
		} else {
			require.NoError(t, embedded.Restore(path, opts...))
		}
		restored, err := embedded.Start(ctx, opts...)
		require.NoError(t, err)
		rcli, err := restored.Client()
		require.NoError(t, err)
		got, err := rcli.Get(ctx, "/k/", clientv3.WithPrefix())
		require.NoError(t, err)
		require.Equal(t, want, kvPairs(got.Kvs), "%s restores revision %d", filepath.Base(path), info.Revision)
		rcli.Close()
		require.NoError(t, restored.Close())
	}
}

// TestScheduledSnapshotFailure points the schedule at a file instead of a
// directory: snapshots fail, are reported, and the member serves on; once
// the directory is there they succeed.
func TestScheduledSnapshotFailure(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	dir := filepath.Join(t.TempDir(), "snapshots")
	require.NoError(t, os.WriteFile(dir, nil, 0o600))
	h := &recordingHandler{}
	m := embeddedtest.Start(t, embedded.WithLogger(slog.New(h)),
		embedded.WithSnapshots(embedded.SnapshotSchedule{Dir: dir, Interval: 100 * time.Millisecond}))
	require.Eventually(t, func() bool { return m.Server().Status().Snapshots.Failures >= 2 }, 30*time.Second, 10*time.Millisecond)
	st := m.Server().Status().Snapshots
	require.Error(t, st.Err)
	require.Zero(t, st.Count)
	require.GreaterOrEqual(t, h.count("snapshot failed"), 2)
	require.NoError(t, m.Server().Healthy(ctx), "a failed snapshot is not fatal")
	put(t, ctx, m.Client(), "k", "v")

	require.NoError(t, os.Remove(dir))
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.Eventually(t, func() bool { return m.Server().Status().Snapshots.Count >= 1 }, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return m.Server().Status().Snapshots.Err == nil }, 30*time.Second, 10*time.Millisecond)
	require.FileExists(t, m.Server().Status().Snapshots.LastPath)
}

type writtenKey struct {
	kv  string // key=value
	rev int64
}

func kvPairs(kvs []*mvccpb.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key) + "=" + string(kv.Value)
	}
	return out
}
