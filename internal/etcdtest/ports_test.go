package etcdtest

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A test binary picks ports from a slice of the range that it holds a lock
// on, so that another binary, taking the next free slice, never picks them.
func TestFreeAddrFromAClaimedSlice(t *testing.T) {
	_, port, err := net.SplitHostPort(FreeAddr(t))
	require.NoError(t, err)
	require.NotNil(t, ownPorts, "a slice was free")
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, p, ownPorts.Low)
	assert.Less(t, p, ownPorts.High)

	require.Len(t, held, 1)
	other, err := os.Open(held[0].Name()) // as another process would
	require.NoError(t, err)
	defer other.Close()
	assert.ErrorIs(t, syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), syscall.EWOULDBLOCK,
		"the slice is held")
}
