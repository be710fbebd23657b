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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binaries builds the demo commands once per test binary.
var binaries struct {
	once            sync.Once
	dir             string
	gateway, worker string
	err             error
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
		} {
			*b.out = filepath.Join(binaries.dir, filepath.Base(b.pkg))
			out, err := exec.Command("go", "build", "-o", *b.out, b.pkg).CombinedOutput()
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
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), added: make(chan struct{}), done: make(chan struct{})}
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
	Services []struct {
		Name      string `json:"name"`
		Instances []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"instances"`
	} `json:"services"`
	Elections []struct {
		Name   string `json:"name"`
		Leader string `json:"leader"`
	} `json:"elections"`
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

func (s gatewayStatus) leader(name string) string {
	for _, e := range s.Elections {
		if e.Name == name {
			return e.Leader
		}
	}
	return ""
}
