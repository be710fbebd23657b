package etcdtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// awaitStopped waits until every thread of process pid is stopped (after
// SIGSTOP) or none is (after SIGCONT). A signal is delivered
// asynchronously: right after kill returns, a thread running on another
// core may still answer a request or two, which a test that paused the
// process takes for a member that does not hold requests. Where /proc
// cannot tell, it gives up after a second.
func awaitStopped(pid int, stopped bool) {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if allStopped(pid) == stopped {
			return
		}
		time.Sleep(time.Millisecond) // polling the kernel's view, with a deadline
	}
}

// allStopped reports whether /proc shows every thread of pid stopped.
func allStopped(pid int) bool {
	stats, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "stat"))
	if err != nil || len(stats) == 0 {
		return false
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended
		}
		// "tid (comm) S ...": comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			return false
		}
		if st := s[i+2]; st != 'T' && st != 't' {
			return false
		}
	}
	return true
}
