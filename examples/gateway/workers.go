package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// workerMode is the first argument that makes the gateway binary run as a
// demo worker: -workers starts such processes of its own executable.
const workerMode = "worker"

// supervisor runs the demo's worker processes: the gateway's own
// executable in worker mode, each with a pipe on its standard input whose
// closing (the gateway stopping, or dying) makes it stop gracefully.
type supervisor struct {
	mu    sync.Mutex
	procs []*workerProc
}

type workerProc struct {
	id    string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	exit  string // how it ended, once done
}

// workerInfo is a worker process as the status shows it.
type workerInfo struct {
	ID    string `json:"id"`
	PID   int    `json:"pid"`
	State string `json:"state"` // running, or how it exited
}

// start starts a worker process with the given worker flags.
func (s *supervisor) start(id string, args ...string) (*workerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{workerMode, "-with-parent", "-id", id}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &workerProc{id: id, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.exit = "exited 0"
		if err != nil {
			p.exit = err.Error()
		}
		fmt.Printf("gateway: worker %s (pid %d) %s\n", id, cmd.Process.Pid, p.exit)
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

func (s *supervisor) list() []workerInfo {
	if s == nil {
		return []workerInfo{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]workerInfo, 0, len(s.procs))
	for _, p := range s.procs {
		wi := workerInfo{ID: p.id, PID: p.cmd.Process.Pid, State: "running"}
		select {
		case <-p.done:
			wi.State = p.exit
		default:
		}
		out = append(out, wi)
	}
	return out
}

// stop asks every worker to stop by closing its standard input, waits up
// to grace for them, then sends SIGTERM, and kills those still running
// after another grace.
func (s *supervisor) stop(grace time.Duration) {
	s.mu.Lock()
	procs := append([]*workerProc(nil), s.procs...)
	s.mu.Unlock()
	for _, p := range procs {
		p.stdin.Close()
	}
	if waitAll(procs, grace) {
		return
	}
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	if waitAll(procs, grace) {
		return
	}
	for _, p := range procs {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitAll waits up to d for every process to exit, reporting whether they
// all did.
func waitAll(procs []*workerProc, d time.Duration) bool {
	expired := time.NewTimer(d)
	defer expired.Stop()
	for _, p := range procs {
		select {
		case <-p.done:
		case <-expired.C:
			return false
		}
	}
	return true
}
