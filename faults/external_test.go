package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// etcdServerModule is the module whose main package is etcd's server.
const etcdServerModule = "go.etcd.io/etcd/server/v3"

// externalCluster is a cluster of standalone etcd processes, built from
// etcd's own server at the version this module requires. Faults are
// signals: SIGKILL to crash, SIGTERM to stop.
type externalCluster struct {
	t       *testing.T
	members []*process
	status  *clientv3.Client // for Status calls to single members
}

// process is one etcd member process; it can be started again on its data
// dir with the same flags.
type process struct {
	name      string
	clientURL string
	args      []string
	logPath   string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
}

// etcdBinary returns the etcd server binary: ROSTER_ETCD_BIN if set, else
// one built into a temporary directory from the module graph.
func etcdBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("ROSTER_ETCD_BIN"); bin != "" {
		return bin
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("faults: no go command to build etcd with (or set ROSTER_ETCD_BIN): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "etcd")
	out, err := exec.Command(gobin, "build", "-o", bin, etcdServerModule).CombinedOutput()
	if err != nil {
		t.Fatalf("faults: go build %s: %v\n%s", etcdServerModule, err, out)
	}
	return bin
}

// checkVersion fails the test unless bin is the etcd release this test
// binary links (the api, client and server modules share it), so the
// external run tests the same etcd as the embedded one.
func checkVersion(t *testing.T, bin string) {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("faults: %s --version: %v", bin, err)
	}
	if !strings.Contains(string(out), "etcd Version: "+version.Version+"\n") {
		t.Fatalf("faults: %s is not etcd %s:\n%s", bin, version.Version, out)
	}
	t.Logf("etcd %s from %s", version.Version, bin)
}

// startExternal starts n etcd processes on free loopback ports with data
// in a temporary directory, and waits until they serve. They are killed
// when the test ends.
func startExternal(t *testing.T, n int) *externalCluster {
	t.Helper()
	bin := etcdBinary(t)
	checkVersion(t, bin)
	const attempts = 3 // a free port may be taken before etcd binds it
	var err error
	for range attempts {
		var c *externalCluster
		if c, err = tryStartExternal(t, bin, n); err == nil {
			return c
		}
		t.Logf("faults: starting etcd processes: %v; retrying on other ports", err)
	}
	t.Fatalf("faults: starting etcd processes: %v", err)
	return nil
}

func tryStartExternal(t *testing.T, bin string, n int) (*externalCluster, error) {
	dir := t.TempDir()
	addrs := make([]string, 2*n) // client, peer, for each member
	for i := range addrs {
		addrs[i] = etcdtest.FreeAddr(t)
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=http://%s", i, addrs[2*i+1]))
	}
	c := &externalCluster{t: t}
	var endpoints []string
	for i := range n {
		clientURL := "http://" + addrs[2*i]
		peerURL := "http://" + addrs[2*i+1]
		endpoints = append(endpoints, clientURL)
		c.members = append(c.members, &process{
			name:      fmt.Sprintf("m%d", i),
			clientURL: clientURL,
			logPath:   filepath.Join(dir, fmt.Sprintf("m%d.log", i)),
			args: []string{bin,
				"--name", fmt.Sprintf("m%d", i),
				"--data-dir", filepath.Join(dir, fmt.Sprintf("m%d", i)),
				"--listen-peer-urls", peerURL,
				"--initial-advertise-peer-urls", peerURL,
				"--listen-client-urls", clientURL,
				"--advertise-client-urls", clientURL,
				"--initial-cluster", strings.Join(initial, ","),
				"--initial-cluster-state", "new",
				"--initial-cluster-token", "roster-faults",
				"--log-level", "warn",
			},
		})
	}
	for _, p := range c.members {
		if err := p.start(); err != nil {
			c.killAll()
			return nil, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, p := range c.members {
		wg.Go(func() { errs[i] = p.awaitServing(etcdtest.StartTimeout) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.killAll()
		return nil, err
	}
	c.status = etcdtest.NewClient(t, endpoints...)
	t.Cleanup(c.killAll) // runs before the client's cleanup, registered earlier
	return c, nil
}

func (c *externalCluster) killAll() {
	for _, p := range c.members {
		p.signal(syscall.SIGKILL)
	}
}

func (c *externalCluster) Size() int             { return len(c.members) }
func (c *externalCluster) Endpoint(i int) string { return c.members[i].clientURL }

func (c *externalCluster) Leader(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(etcdtest.StartTimeout)
	for time.Now().Before(deadline) {
		if i := c.agreedLeader(); i >= 0 {
			return i
		}
		time.Sleep(50 * time.Millisecond) // polling the members' own view
	}
	t.Fatalf("faults: no leader within %v", etcdtest.StartTimeout)
	return -1
}

// agreedLeader returns the index of the member every running member
// names as leader, or -1.
func (c *externalCluster) agreedLeader() int {
	var lead uint64
	leader := -1
	for i, p := range c.members {
		if !p.running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := c.status.Status(ctx, p.clientURL)
		cancel()
		if err != nil || st.Leader == 0 || (lead != 0 && st.Leader != lead) {
			return -1
		}
		lead = st.Leader
		if st.Header.MemberId == st.Leader {
			leader = i
		}
	}
	return leader
}

func (c *externalCluster) Kill(t *testing.T, i int) {
	t.Helper()
	c.members[i].signal(syscall.SIGKILL)
}

func (c *externalCluster) Stop(t *testing.T, i int) {
	t.Helper()
	p := c.members[i]
	if !p.signalWithin(syscall.SIGTERM, 10*time.Second) {
		t.Logf("faults: %s ignored SIGTERM for 10 s; killed", p.name)
		p.signal(syscall.SIGKILL)
	}
}

func (c *externalCluster) Restart(t *testing.T, i int) {
	p := c.members[i]
	p.signal(syscall.SIGKILL) // no-op unless it still runs
	if err := p.start(); err != nil {
		t.Fatalf("faults: restart %s: %v", p.name, err)
	}
	if err := p.awaitServing(etcdtest.StartTimeout); err != nil {
		t.Fatalf("faults: restart %s: %v", p.name, err)
	}
}

func (p *process) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() // stdout and stderr are files: Wait copies nothing
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	return nil
}

func (p *process) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.exited
}

func (p *process) running() bool {
	cmd, exited := p.current()
	if cmd == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// signal sends sig and waits for the process to exit.
func (p *process) signal(sig syscall.Signal) {
	p.signalWithin(sig, time.Hour)
}

// signalWithin sends sig and waits up to d for the process to exit.
func (p *process) signalWithin(sig syscall.Signal, d time.Duration) bool {
	cmd, exited := p.current()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig) // fails only if it has exited already
	select {
	case <-exited:
		return true
	case <-time.After(d):
		return false
	}
}

// awaitServing waits until the member says it is healthy (it has a
// leader and serves reads), or fails if the process exits or d passes.
func (p *process) awaitServing(d time.Duration) error {
	_, exited := p.current()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(d)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting:\n%s", p.name, p.logTail())
		default:
		}
		if p.healthy(hc) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy within %v:\n%s", p.name, d, p.logTail())
		}
		time.Sleep(50 * time.Millisecond) // polling the member's health
	}
}

func (p *process) healthy(hc *http.Client) bool {
	resp, err := hc.Get(p.clientURL + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&h) == nil && h.Health == "true"
}

// logTail is the end of the member's log, for failure messages.
func (p *process) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
