package etcdtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A child is the test binary run again to play one role of a test in a
// process of its own, so that the test can pause it (SIGSTOP) past a TTL as
// a GC pause, a stopped VM or a swapped-out process would, and resume it.
//
// A role reads commands from in, one line each, and answers on out, one line
// each; it returns when in ends. Register roles at package level:
//
//	var _ = etcdtest.Role("holder", func(args []string, in *bufio.Scanner, out io.Writer) error { ... })
//
// and start one with StartChild. etcdtest.Main runs the role instead of the
// tests in the child.
type RoleFunc func(args []string, in *bufio.Scanner, out io.Writer) error

const (
	roleEnv = "ETCDTEST_ROLE"
	argsEnv = "ETCDTEST_ARGS"
)

var roles = map[string]RoleFunc{}

// Role registers fn under name and returns name.
func Role(name string, fn RoleFunc) string {
	roles[name] = fn
	return name
}

// runRole runs the role this process was started for, if any, and exits.
func runRole() {
	name := os.Getenv(roleEnv)
	if name == "" {
		return
	}
	fn := roles[name]
	if fn == nil {
		fmt.Fprintf(os.Stderr, "etcdtest: no role %q registered\n", name)
		os.Exit(2)
	}
	var args []string
	if a := os.Getenv(argsEnv); a != "" {
		args = strings.Split(a, "\x1f")
	}
	if err := fn(args, bufio.NewScanner(os.Stdin), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "etcdtest: role", name+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Child is a running child process.
type Child struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	exited chan struct{}

	mu     sync.Mutex
	paused bool
}

// StartChild starts the test binary as a child playing role with args. It
// is killed when the test ends.
func StartChild(t testing.TB, role string, args ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, argsEnv+"="+strings.Join(args, "\x1f"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("etcdtest: child %s: %v", role, err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("etcdtest: child %s: %v", role, err)
	}
	c := &Child{t: t, name: role, cmd: cmd, in: in, lines: make(chan string, 64), exited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{b: &strings.Builder{}}
	if err := cmd.Start(); err != nil {
		t.Fatalf("etcdtest: child %s: %v", role, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		s := bufio.NewScanner(out)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	go func() {
		<-read // Wait closes the pipe: read it to the end first
		cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(c.Kill)
	return c
}

// Send writes one command line to the child.
func (c *Child) Send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatalf("etcdtest: child %s: send %q: %v", c.name, line, err)
	}
}

// Line returns the child's next line of output, failing the test if none
// comes within d.
func (c *Child) Line(d time.Duration) string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.exited
			c.t.Fatalf("etcdtest: child %s exited (%v):\n%s", c.name, c.cmd.ProcessState, c.stderrText())
		}
		return l
	case <-time.After(d):
		c.t.Fatalf("etcdtest: child %s said nothing within %v:\n%s", c.name, d, c.stderrText())
		return ""
	}
}

// Lines is the child's output, one line per item; closed when it exits.
func (c *Child) Lines() <-chan string { return c.lines }

// Pause stops the child (SIGSTOP): its sockets stay open, its timers do not
// fire, nothing it holds is renewed, until Resume.
func (c *Child) Pause() { c.signal(syscall.SIGSTOP, true) }

// Resume lets a paused child run again (SIGCONT).
func (c *Child) Resume() { c.signal(syscall.SIGCONT, false) }

func (c *Child) signal(sig syscall.Signal, paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused != paused && c.cmd.Process.Signal(sig) == nil {
		c.paused = paused
		awaitStopped(c.cmd.Process.Pid, paused)
	}
}

// Kill kills the child and waits for it. It is idempotent.
func (c *Child) Kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *Child) stderrText() string {
	lw := c.cmd.Stderr.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.b.String()
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
