package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// TestThreeShells starts a cluster as three shells would, from flags only:
// three roster-etcd processes bootstrap it, a fourth joins through them,
// restarts on its data dir, and leaves, a fifth is removed while stopped;
// SIGTERM stops the rest promptly.
func TestThreeShells(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	type addrs struct{ client, peer string }
	var ms []addrs
	var initial []string
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		ms = append(ms, addrs{etcdtest.FreeAddr(t), etcdtest.FreeAddr(t)})
		if i < 3 {
			initial = append(initial, name+"=http://"+ms[i].peer)
		}
	}
	memberFlags := func(i int, name string) []string {
		return []string{"--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", "http://" + ms[i].client, "--listen-peer-urls", "http://" + ms[i].peer,
			"--log-level", "info"}
	}
	var procs []*proc
	for i, name := range []string{"a", "b", "c"} {
		procs = append(procs, startProc(t, dir, name, bin, append(memberFlags(i, name),
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", "three-shells")...))
	}
	for i, p := range procs {
		awaitHealthy(t, p, "http://"+ms[i].client)
	}
	ctx := ctxT(t, 120*time.Second)
	cli := etcdtest.NewClient(t, "http://"+ms[0].client, "http://"+ms[1].client, "http://"+ms[2].client)
	_, err := cli.Put(ctx, "before", "1")
	require.NoError(t, err)

	joinFlags := append(memberFlags(3, "d"), "--join-endpoints", "http://"+ms[0].client+",http://"+ms[1].client)
	d := startProc(t, dir, "d", bin, joinFlags...)
	awaitHealthy(t, d, "http://"+ms[3].client)
	only := etcdtest.NewClient(t, "http://"+ms[3].client)
	get, err := only.Get(ctx, "before")
	require.NoError(t, err)
	require.Equal(t, "1", string(get.Kvs[0].Value), "the new member serves the cluster's data")
	require.Equal(t, []string{"a", "b", "c", "d"}, memberNames(t, ctx, cli))

	// Killed and started again with the same flags, it restarts on its
	// data dir instead of being added a second time.
	d.kill(t)
	d = startProc(t, dir, "d", bin, joinFlags...)
	awaitHealthy(t, d, "http://"+ms[3].client)
	require.Equal(t, []string{"a", "b", "c", "d"}, memberNames(t, ctx, cli))
	require.Equal(t, 1, strings.Count(procs[0].log(), "added-peer-peer-urls=[http://"+ms[3].peer+"]"), "d was added once")
	require.Equal(t, 2, strings.Count(d.log(), `etcd member "d"`), "d served twice")
	require.Eventually(t, func() bool { return strings.Contains(procs[0].log(), `msg="member joined"`) },
		10*time.Second, 20*time.Millisecond, "a running member logs the join")

	out, err := exec.CommandContext(ctx, bin, "leave", "--endpoints", "http://"+ms[0].client, "--name", "d").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "removed member d")
	require.NoError(t, d.wait(t, 30*time.Second), "the removed member exits cleanly:\n%s", d.log())
	require.Contains(t, d.log(), "was removed from the cluster")
	require.Equal(t, []string{"a", "b", "c"}, memberNames(t, ctx, cli))
	require.Eventually(t, func() bool { return strings.Contains(procs[0].log(), `msg="member left"`) },
		10*time.Second, 20*time.Millisecond, "a running member logs the leave")
	t.Logf("d's last words: %s", lastLines(d.log(), 2))

	// A member removed while it is stopped (SIGSTOP) never sees the entry
	// that removes it: resumed, it learns of it from its peers refusing
	// it, and still exits as removed, not as failed.
	e := startProc(t, dir, "e", bin, append(memberFlags(4, "e"), "--join-endpoints", "http://"+ms[0].client)...)
	awaitHealthy(t, e, "http://"+ms[4].client)
	e.signal(t, syscall.SIGSTOP)
	out, err = exec.CommandContext(ctx, bin, "leave", "--endpoints", "http://"+ms[0].client, "--name", "e").CombinedOutput()
	require.NoError(t, err, "%s", out)
	e.signal(t, syscall.SIGCONT)
	require.NoError(t, e.wait(t, 30*time.Second), "the member removed while stopped exits cleanly:\n%s", e.log())
	require.Contains(t, e.log(), "was removed from the cluster")
	require.Equal(t, []string{"a", "b", "c"}, memberNames(t, ctx, cli))

	for _, p := range procs {
		p.signal(t, syscall.SIGTERM)
	}
	for _, p := range procs {
		start := time.Now()
		require.NoError(t, p.wait(t, 10*time.Second), "%s stops on SIGTERM:\n%s", p.name, p.log())
		t.Logf("%s stopped %v after SIGTERM", p.name, time.Since(start).Round(time.Millisecond))
	}
}

// TestBadFlagsExit checks a bad command line's exit status and message
// from outside.
func TestBadFlagsExit(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	for _, args := range [][]string{
		{"--initial-cluster-state", "existing"},
		{"--listen-client-urls", "http://0.0.0.0:0"},
		{"leave"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%v", args)
		require.Equal(t, 2, exit.ExitCode(), "%v: %s", args, stderr.String())
		require.Contains(t, stderr.String(), "roster-etcd: ", "%v", args)
	}
}

var built struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildBinary builds roster-etcd from this package, once per test process.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "roster-etcd-e2e-*")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "roster-etcd")
		built.out, built.err = exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
	})
	require.NoError(t, built.err, "%s", built.out)
	t.Cleanup(func() {}) // the binary's directory goes with the machine's temp dir
	return built.path
}

// proc is one roster-etcd process.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

func startProc(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer logf.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(t) })
	return p
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.done:
	default:
		require.NoError(t, p.cmd.Process.Signal(sig))
	}
}

func (p *proc) kill(t *testing.T) {
	p.signal(t, syscall.SIGKILL)
	<-p.done
}

// wait waits up to d for the process to exit and returns how it exited.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %v", p.name, d)
	}
}

// awaitHealthy polls the member's /health until it reports healthy.
func awaitHealthy(t *testing.T, p *proc, clientURL string) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	require.Eventually(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.log())
		default:
		}
		resp, err := hc.Get(clientURL + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var h struct{ Health string }
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.Health == "true"
	}, 60*time.Second, 50*time.Millisecond, "%s never healthy:\n%s", p.name, p.log())
}

func memberNames(t *testing.T, ctx context.Context, cli *clientv3.Client) []string {
	t.Helper()
	var names []string
	require.Eventually(t, func() bool {
		resp, err := cli.MemberList(ctx)
		if err != nil {
			return false
		}
		names = names[:0]
		for _, m := range resp.Members {
			names = append(names, m.Name)
		}
		slices.Sort(names)
		return !slices.Contains(names, "")
	}, 10*time.Second, 20*time.Millisecond)
	return names
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
