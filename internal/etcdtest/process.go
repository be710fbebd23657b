package etcdtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one etcd member process; it can be started again on its data
// dir with the same flags.
type process struct {
	name      string
	clientURL string
	args      []string // binary first
	logPath   string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	paused bool
}

func (p *process) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test binary that dies (a panic, a timeout) takes its members along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() // stdout and stderr are files: Wait copies nothing
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited, p.paused = cmd, exited, false
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

// stop sends sig and waits up to d for the process to exit. A paused
// process is resumed first, or it could not act on a SIGTERM.
func (p *process) stop(sig syscall.Signal, d time.Duration) bool {
	cmd, exited := p.current()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig) // fails only if it has exited already
	if sig != syscall.SIGKILL {
		p.setPaused(false)
	}
	select {
	case <-exited:
		return true
	case <-time.After(d):
		return false
	}
}

// setPaused stops (SIGSTOP) or continues (SIGCONT) the process: stopped, it
// keeps its sockets open and answers nothing, like a frozen VM.
func (p *process) setPaused(paused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.paused == paused {
		return
	}
	sig := syscall.SIGCONT
	if paused {
		sig = syscall.SIGSTOP
	}
	if p.cmd.Process.Signal(sig) == nil {
		p.paused = paused
		awaitStopped(p.cmd.Process.Pid, paused)
	}
}

// awaitServing waits until the member says it is healthy (it has a leader
// and serves reads), or fails if the process exits or ctx ends.
func (p *process) awaitServing(ctx context.Context) error {
	cmd, exited := p.current()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.healthy(hc) {
			if held, ok := listens(cmd.Process.Pid, p.clientURL); ok && !held {
				return &takenError{name: p.name, url: p.clientURL}
			}
			return nil
		}
		select {
		case <-exited:
			return &exitError{name: p.name, log: p.logTail()}
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %w:\n%s", p.name, ctx.Err(), p.logTail())
		case <-tick.C: // polling the member's health
		}
	}
}

// exitError is a member process that exited while starting.
type exitError struct{ name, log string }

func (e *exitError) Error() string { return e.name + " exited while starting:\n" + e.log }

// takenError is a member whose client URL another process serves: the
// port was taken between its choice and the member's bind.
type takenError struct{ name, url string }

func (e *takenError) Error() string { return e.name + ": another process serves " + e.url }

// portClash reports whether err is a start that failed on a taken port.
func portClash(err error) bool {
	var ee *exitError
	var te *takenError
	return errors.As(err, &te) || errors.As(err, &ee) && strings.Contains(ee.log, "address already in use")
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
	const max = 3000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

func (p *process) isPaused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}
