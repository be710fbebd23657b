package embedded

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWriteAtomic cuts a write short: the file it was to become does not
// appear, an older one under that name stays as it was, and no part is
// left behind.
func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "snap.db")
	cut := errors.New("stream cut")
	half := func(f *os.File) (int64, error) {
		n, err := f.Write(make([]byte, 4096))
		if err != nil {
			return int64(n), err
		}
		return int64(n), cut
	}
	_, err := writeAtomic(path, half)
	require.ErrorIs(t, err, cut)
	require.NoFileExists(t, path)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "no part left behind")

	n, err := writeAtomic(path, func(f *os.File) (int64, error) {
		n, err := f.WriteString("complete")
		return int64(n), err
	})
	require.NoError(t, err)
	require.EqualValues(t, 8, n)
	_, err = writeAtomic(path, half)
	require.ErrorIs(t, err, cut)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "complete", string(got), "a failed write leaves the older file be")
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)

	_, err = writeAtomic(filepath.Join(dir, "missing", "snap.db"), half)
	require.Error(t, err)
}

// TestHashTail checks the integrity check Snapshot applies to etcd's stream.
func TestHashTail(t *testing.T) {
	data := make([]byte, 3*512)
	for i := range data {
		data[i] = byte(i)
	}
	sum := sha256Sum(data)
	for _, chunk := range []int{1, 7, 32, 512, 4096} {
		var h hashTail
		stream := append(append([]byte(nil), data...), sum...)
		for len(stream) > 0 {
			n := min(chunk, len(stream))
			h.Write(stream[:n])
			stream = stream[n:]
		}
		require.True(t, h.ok(), "chunks of %d", chunk)
	}
	var h hashTail
	bad := append(append([]byte(nil), data...), sum...)
	bad[10] ^= 1
	h.Write(bad)
	require.False(t, h.ok(), "a flipped bit is caught")
	var empty hashTail
	require.False(t, empty.ok())
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
