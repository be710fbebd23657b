package etcdtest

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listens tells a member's own client listener from one another process
// holds.
func TestListens(t *testing.T) {
	m := Start(t)
	cmd, _ := m.p.current()
	held, ok := listens(cmd.Process.Pid, m.p.clientURL)
	require.True(t, ok, "/proc tells")
	assert.True(t, held, "the member holds its client listener")

	l, err := net.Listen("tcp", FreeAddr(t))
	require.NoError(t, err)
	defer l.Close()
	held, ok = listens(cmd.Process.Pid, "http://"+l.Addr().String())
	require.True(t, ok, "/proc tells")
	assert.False(t, held, "a listener of this process is not the member's")

	_, ok = listens(cmd.Process.Pid, "http://127.0.0.1:1")
	assert.False(t, ok, "no listener there: /proc cannot tell")
}

// A member launched on a client port another member serves fails with a
// port clash, whether it exits first or its health check reaches the other
// member first: it never passes for that member.
func TestLaunchOnATakenPort(t *testing.T) {
	other := Start(t)
	for range 3 {
		dir := t.TempDir()
		p := &process{
			name:      "m0",
			clientURL: other.p.clientURL,
			logPath:   filepath.Join(dir, "m0.log"),
			args: []string{binary(t),
				"--name", "m0",
				"--data-dir", filepath.Join(dir, "m0"),
				"--listen-client-urls", other.p.clientURL,
				"--listen-peer-urls", "http://" + FreeAddr(t),
				"--log-level", "warn",
			},
		}
		err := launch(p)
		if err == nil {
			p.stop(syscall.SIGKILL, time.Hour)
		}
		require.Error(t, err, "launched on a port another member serves")
		assert.True(t, portClash(err), "a port clash: %v", err)
		assert.False(t, strings.Contains(err.Error(), "not healthy"), err.Error())
	}
}
