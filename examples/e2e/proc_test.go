package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binaries builds the demo commands, and the roster CLI, once per test
// binary.
var binaries struct {
	once                 sync.Once
	dir                  string
	gateway, worker, cli string
	err                  error
}

// cli returns the path of the roster CLI.
func cli(t *testing.T) string {
	t.Helper()
	build(t)
	return binaries.cli
}

func build(t *testing.T) (gateway, worker string) {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "roster-e2e-*")
		if binaries.err != nil {
			return
		}
		for _, b := range []struct {
			out *string
			pkg string
		}{
			{&binaries.gateway, "../gateway"},
			{&binaries.worker, "../worker"},
			{&binaries.cli, "github.com/rosterkit/roster/cmd/roster"},
		} {
			*b.out = filepath.Join(binaries.dir, filepath.Base(b.pkg))
			args := []string{"build", "-o", *b.out}
			if raceBuild {
				args = append(args, "-race")
			}
			out, err := exec.Command("go", append(args, b.pkg)...).CombinedOutput()
			if err != nil {
				binaries.err = fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.gateway, binaries.worker
}

// proc is a demo process whose output the test reads line by line.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	mu    sync.Mutex
	lines []string
	added chan struct{} // closed and replaced when a line arrives

	done    chan struct{} // closed once the process has exited
	exitErr error
}

func start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	return startIn(t, "", name, bin, args...)
}

// startIn starts a process in the working directory dir ("" for this one).
func startIn(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), added: make(chan struct{}), done: make(chan struct{})}
	p.cmd.Dir = dir
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.collect(stdout) })
	wg.Go(func() { p.collect(stderr) })
	go func() {
		wg.Wait()
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", p.name, strings.Join(p.output(), "\n"))
		}
	})
	return p
}

func (p *proc) collect(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.added)
		p.added = make(chan struct{})
		p.mu.Unlock()
	}
}

func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// await waits for an output line matching re and returns its submatches.
func (p *proc) await(re string, timeout time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for seen := 0; ; {
		p.mu.Lock()
		lines, added := p.lines[seen:], p.added
		seen = len(p.lines)
		p.mu.Unlock()
		for _, l := range lines {
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		}
		select {
		case <-added:
		case <-deadline.C:
			p.t.Fatalf("%s printed no line matching %q within %v", p.name, re, timeout)
		}
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
}

// wait waits for the process to exit by itself and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s still running after %v", p.name, timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(timeout time.Duration) int {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s still running %v after SIGTERM", p.name, timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) kill() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	<-p.done
}

// gatewayStatus is the part of /_roster/status the tests read.
type gatewayStatus struct {
	Gateway struct {
		UptimeS float64 `json:"uptime_s"`
		Workers []struct {
			ID    string `json:"id"`
			PID   int    `json:"pid"`
			State string `json:"state"`
		} `json:"workers"`
	} `json:"gateway"`
	Etcd struct {
		Healthy bool `json:"healthy"`
		Members []struct {
			Name string `json:"name"`
		} `json:"members"`
	} `json:"etcd"`
	Services []struct {
		Name          string  `json:"name"`
		Rate          float64 `json:"rate"`
		Requests      int64   `json:"requests"`
		InstanceCount int     `json:"instance_count"`
		Draining      int     `json:"draining"`
		Instances     []struct {
			ID       string            `json:"id"`
			Addr     string            `json:"addr"`
			Status   string            `json:"status"`
			Reason   string            `json:"reason"`
			Metadata map[string]string `json:"metadata"`
			Requests int64             `json:"requests"`
		} `json:"instances"`
	} `json:"services"`
	Elections []struct {
		Name       string  `json:"name"`
		Leader     string  `json:"leader"`
		Token      int64   `json:"token"`
		TenureS    float64 `json:"tenure_s"`
		Candidates []struct {
			Who string `json:"who"`
		} `json:"candidates"`
	} `json:"elections"`
	Locks []struct {
		Name   string `json:"name"`
		Holder *struct {
			Who string `json:"who"`
		} `json:"holder"`
		Waiters []struct {
			Who string `json:"who"`
		} `json:"waiters"`
	} `json:"locks"`
	Timeline []struct {
		Kind     string `json:"kind"`
		Instance string `json:"instance"`
		Text     string `json:"text"`
	} `json:"timeline"`
}

func getStatus(ctx context.Context, base string) (gatewayStatus, error) {
	var st gatewayStatus
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_roster/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (s gatewayStatus) instances(service string) map[string]string {
	out := map[string]string{}
	for _, svc := range s.Services {
		if svc.Name == service {
			for _, in := range svc.Instances {
				out[in.ID] = in.Status
			}
		}
	}
	return out
}

// addrOf returns an instance's address.
func (s gatewayStatus) addrOf(service, id string) string {
	for _, svc := range s.Services {
		if svc.Name == service {
			for _, in := range svc.Instances {
				if in.ID == id {
					return in.Addr
				}
			}
		}
	}
	return ""
}

// pidOf returns the process ID an instance registered in its metadata.
func (s gatewayStatus) pidOf(service, id string) int {
	for _, svc := range s.Services {
		if svc.Name == service {
			for _, in := range svc.Instances {
				if in.ID == id {
					pid, _ := strconv.Atoi(in.Metadata["pid"])
					return pid
				}
			}
		}
	}
	return 0
}

func (s gatewayStatus) leader(name string) string {
	for _, e := range s.Elections {
		if e.Name == name {
			return e.Leader
		}
	}
	return ""
}

// hasEvent reports whether the timeline has an event of kind about
// instance.
func (s gatewayStatus) hasEvent(kind, instance string) bool {
	for _, e := range s.Timeline {
		if e.Kind == kind && (instance == "" || e.Instance == instance) {
			return true
		}
	}
	return false
}
