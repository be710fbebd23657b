package etcdtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// StartTimeout bounds how long a member may take to become ready.
const StartTimeout = 30 * time.Second

// stopTimeout is how long a member may take to stop after SIGTERM before it
// is killed.
const stopTimeout = 10 * time.Second

// Member is an etcd member process started for a test. It can be stopped,
// killed, paused and restarted on its data dir and addresses.
type Member struct {
	t testing.TB
	p *process
}

// Start starts a single-member cluster for t. flags are extra roster-etcd
// flags, such as "--auto-compaction-retention=0".
func Start(t testing.TB, flags ...string) *Member {
	t.Helper()
	bin := binary(t)
	var err error
	for range 3 { // a free port may be taken before etcd binds it
		dir := t.TempDir()
		client, peer := FreeAddr(t), FreeAddr(t)
		p := &process{
			name:      "m0",
			clientURL: "http://" + client,
			logPath:   filepath.Join(dir, "m0.log"),
			args: append([]string{bin,
				"--name", "m0",
				"--data-dir", filepath.Join(dir, "m0"),
				"--listen-client-urls", "http://" + client,
				"--listen-peer-urls", "http://" + peer,
				"--log-level", "warn",
			}, flags...),
		}
		if err = launch(p); err == nil {
			m := &Member{t: t, p: p}
			t.Cleanup(m.kill)
			return m
		}
		if !portClash(err) {
			break
		}
	}
	t.Fatalf("etcdtest: start member: %v", err)
	return nil
}

// launch starts p and waits until it serves.
func launch(p *process) error {
	if err := p.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := p.awaitServing(ctx); err != nil {
		p.stop(syscall.SIGKILL, time.Hour)
		return err
	}
	return nil
}

func binary(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Name is the member's name.
func (m *Member) Name() string { return m.p.name }

// Endpoints are the member's client URLs.
func (m *Member) Endpoints() []string { return []string{m.p.clientURL} }

// Client returns a new client of this member, closed when the test ends.
func (m *Member) Client() *clientv3.Client {
	m.t.Helper()
	return NewClient(m.t, m.Endpoints()...)
}

// Running reports whether the member's process is alive (paused or not).
func (m *Member) Running() bool { return m.p.running() }

// Stop stops the member gracefully (SIGTERM), keeping its data.
func (m *Member) Stop() {
	m.t.Helper()
	if !m.p.stop(syscall.SIGTERM, stopTimeout) {
		m.t.Logf("etcdtest: %s ignored SIGTERM for %v; killed", m.p.name, stopTimeout)
		m.kill()
	}
}

// Kill stops the member as a crash would (SIGKILL), keeping its data.
func (m *Member) Kill() { m.kill() }

func (m *Member) kill() { m.p.stop(syscall.SIGKILL, time.Hour) }

// Pause freezes the member's process (SIGSTOP): its connections stay open
// and it answers nothing, to its clients and its peers alike, until Resume.
func (m *Member) Pause() { m.p.setPaused(true) }

// Resume lets a paused member run again.
func (m *Member) Resume() { m.p.setPaused(false) }

// Restart starts the member again on its data dir and addresses, killing it
// first if it still runs. It returns once the member serves clients.
func (m *Member) Restart() {
	m.t.Helper()
	m.kill()
	if err := launch(m.p); err != nil {
		m.t.Fatalf("etcdtest: restart %s: %v", m.p.name, err)
	}
}

// ID is the member's ID, as etcd reports it.
func (m *Member) ID() uint64 {
	m.t.Helper()
	st := m.status()
	if st == nil {
		m.t.Fatalf("etcdtest: %s does not answer", m.p.name)
	}
	return st.Header.MemberId
}

// Watchers is the number of watchers the member serves, from its
// /metrics (etcd_debugging_mvcc_watcher_total): how a test from outside
// knows a client has got as far as watching. -1 if the member does not
// answer.
func (m *Member) Watchers() int {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(m.p.clientURL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "etcd_debugging_mvcc_watcher_total "); ok {
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// status asks the member itself for its status; nil if it does not answer.
func (m *Member) status() *clientv3.StatusResponse {
	cli, err := clientv3.New(clientv3.Config{Endpoints: m.Endpoints(), DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := cli.Status(ctx, m.p.clientURL)
	if err != nil {
		return nil
	}
	return st
}

// NewClient returns a client of the given endpoints, closed when the test
// ends. Its logs are discarded.
func NewClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Standalone starts a single member outside of any test, for Example
// functions, and returns a client of it and a function that closes the client
// and stops the member.
func Standalone() (*clientv3.Client, func(), error) {
	bin, err := Binary()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "roster-example-*")
	if err != nil {
		return nil, nil, err
	}
	client, err := pickPort()
	if err != nil {
		return nil, nil, err
	}
	peer, err := pickPort()
	if err != nil {
		return nil, nil, err
	}
	p := &process{
		name:      "example",
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", client),
		logPath:   filepath.Join(dir, "member.log"),
		args: []string{bin, "--name", "example", "--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", client),
			"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
			"--log-level", "error"},
	}
	if err := launch(p); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{p.clientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		p.stop(syscall.SIGKILL, time.Hour)
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return cli, func() {
		cli.Close()
		p.stop(syscall.SIGKILL, time.Hour)
		os.RemoveAll(dir)
	}, nil
}
