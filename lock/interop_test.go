package lock_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/lock"
)

// Our Mutex and etcd's concurrency.Mutex, on the same pfx, exclude each
// other: a counter incremented without transactions by both stays exact.
func TestInteropWithConcurrencyMutex(t *testing.T) {
	const each = 40
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	pfx := keys.LockPfx(keys.DefaultNamespace, "shared")
	var cs []contender
	var works []func(context.Context) error
	for i := range 6 {
		cli := m.Client()
		if i%2 == 0 {
			cs = append(cs, rosterContender{newMutex(t, cli, "shared")})
		} else {
			c := newEtcdContender(t, cli, pfx)
			t.Cleanup(c.close)
			cs = append(cs, c)
		}
		works = append(works, counterWork(cli, "/counter"))
	}
	h, elapsed, err := contend(ctx, cs, each, func(ctx context.Context, i int) error { return works[i](ctx) })
	require.NoError(t, err)
	require.Equal(t, len(cs)*each, readCounter(t, m.Client(), "/counter"))
	require.Empty(t, h.exclusionViolation())
	t.Logf("3 roster + 3 etcd mutexes × %d: %v", each, elapsed.Round(time.Millisecond))
}

// `etcdctl lock` waits for our holder, and ours for it.
func TestInteropWithEtcdctlLock(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found: cannot run go tool etcdctl")
	}
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	mu := newMutex(t, m.Client(), "shared")
	pfx := strings.TrimSuffix(mu.Prefix(), "/")

	// Ours first: etcdctl must wait until we release.
	h, err := mu.Lock(ctx)
	require.NoError(t, err)
	ctl := startEtcdctlLock(ctx, t, m.Endpoints()[0], pfx)
	waitKeys(t, m.Client(), mu.Prefix(), 2)
	select {
	case line := <-ctl.lines:
		t.Fatalf("etcdctl acquired while we held: %q", line)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, h.Release(ctx))
	line := ctl.next(t)
	require.True(t, strings.HasPrefix(line, mu.Prefix()), "etcdctl holds %q, a key of our layout", line)

	// etcdctl holds now: we must wait until it lets go.
	_, err = mu.TryLock(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	res := async(ctx, mu.Lock)
	waitKeys(t, m.Client(), mu.Prefix(), 2)
	pending(t, res, 300*time.Millisecond)
	ctl.finish(t)
	r := receive(t, res, 10*time.Second)
	require.NoError(t, r.err)
	require.NoError(t, r.h.Release(ctx))
}

type etcdctl struct {
	cmd     *exec.Cmd
	release string // the file whose creation ends etcdctl's command
	lines   chan string
}

// etcdctlPath builds the module's etcdctl tool, if the build cache does
// not have it, and returns its path: the build, which can take long on a
// busy machine, stays out of the waits that follow the start.
var etcdctlPath = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "tool", "-n", "etcdctl").Output()
	if err != nil {
		return "", fmt.Errorf("go tool -n etcdctl: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
})

// startEtcdctlLock runs `etcdctl lock pfx -- sh -c …`, whose command prints
// the key etcdctl holds and then holds the lock until a file appears.
// (etcdctl does not pass its standard input on to the command.)
func startEtcdctlLock(ctx context.Context, t *testing.T, endpoint, pfx string) *etcdctl {
	t.Helper()
	bin, err := etcdctlPath()
	require.NoError(t, err)
	release := filepath.Join(t.TempDir(), "release")
	cmd := exec.CommandContext(ctx, bin, "--endpoints", endpoint,
		"lock", pfx, "--", "sh", "-c", `echo "$ETCD_LOCK_KEY"; while [ ! -e "$0" ]; do sleep 0.02; done`, release)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &etcdctl{cmd: cmd, release: release, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		os.WriteFile(release, nil, 0o600)
		cmd.Wait()
	})
	return c
}

func (c *etcdctl) next(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		require.True(t, ok, "etcdctl exited without output")
		return line
	case <-time.After(15 * time.Second):
		t.Fatal("etcdctl printed nothing within 15 s")
		return ""
	}
}

// finish lets etcdctl's command end, which releases its lock.
func (c *etcdctl) finish(t *testing.T) {
	t.Helper()
	require.NoError(t, os.WriteFile(c.release, nil, 0o600))
	require.NoError(t, c.cmd.Wait())
}
