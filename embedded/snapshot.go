package embedded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
)

const (
	defaultOpTimeout = 10 * time.Second
	// restoreRevisionBump moves the restored store's revision well past any
	// revision a client saw before, and marks the old ones compacted, so that
	// watchers resuming from an old revision are told to re-list instead of
	// silently missing changes.
	restoreRevisionBump = 1_000_000
)

// Snapshot writes a consistent snapshot of the member's data to w: the same
// bytes "etcdctl snapshot save" writes, integrity hash included. It returns
// the number of bytes written, and an error if the stream was cut short or
// does not match its hash.
func (s *Server) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	cli, err := s.Client()
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("embedded: snapshot: %w", err)
	}
	defer resp.Snapshot.Close()
	var sum hashTail
	n, err := io.Copy(io.MultiWriter(w, &sum), resp.Snapshot)
	if err != nil {
		return n, fmt.Errorf("embedded: snapshot: %w", err)
	}
	if n%512 != sha256.Size {
		// etcd appends a SHA-256 of the database, whose size is a multiple
		// of 512; anything else is a stream cut short.
		return n, fmt.Errorf("embedded: snapshot: %d bytes carry no integrity hash", n)
	}
	if !sum.ok() {
		return n, errors.New("embedded: snapshot: the data does not match its integrity hash")
	}
	return n, nil
}

// hashTail hashes a stream but its last sha256.Size bytes, and keeps those:
// the hash etcd appends to a snapshot.
type hashTail struct {
	h    hash.Hash
	tail []byte
}

func (t *hashTail) Write(p []byte) (int, error) {
	if t.h == nil {
		t.h = sha256.New()
	}
	n := len(p)
	t.tail = append(t.tail, p...)
	if over := len(t.tail) - sha256.Size; over > 0 {
		t.h.Write(t.tail[:over])
		t.tail = append(t.tail[:0], t.tail[over:]...)
	}
	return n, nil
}

func (t *hashTail) ok() bool {
	return t.h != nil && len(t.tail) == sha256.Size && bytes.Equal(t.h.Sum(nil), t.tail)
}

// Restore creates a member's data dir from a snapshot file, as "etcdutl
// snapshot restore" does. It needs WithDataDir (a directory that does not
// exist yet), WithName and WithPeerAddr with a fixed port, because the peer
// URL is written into the restored data; WithCluster restores one member of a
// multi-member cluster. Start the member afterwards with the same options.
func Restore(snapshotPath string, opts ...Option) error {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return err
	}
	if c.dataDir == "" {
		return fmt.Errorf("%w: Restore needs WithDataDir", ErrInvalidConfig)
	}
	if c.peerAddr == "" {
		if u, ok := c.clusterPeer(); ok {
			c.peerAddr = hostOf(u)
		}
	}
	if _, port, err := net.SplitHostPort(c.peerAddr); err != nil || port == "0" {
		return fmt.Errorf("%w: Restore needs a fixed peer address (WithPeerAddr), got %q", ErrInvalidConfig, c.peerAddr)
	}
	token := c.clusterToken
	if token == "" {
		token = defaultClusterToken
	}
	fresh := dirAbsentOrEmpty(c.dataDir)
	err := snapshot.NewV3(c.logger).Restore(snapshot.RestoreConfig{
		SnapshotPath:        snapshotPath,
		Name:                c.name,
		OutputDataDir:       c.dataDir,
		PeerURLs:            []string{c.peerURL()},
		InitialCluster:      c.initialCluster(),
		InitialClusterToken: token,
		RevisionBump:        restoreRevisionBump,
		MarkCompacted:       true,
	})
	if err != nil {
		if fresh {
			// Leave no half-restored member behind to be started by mistake.
			os.RemoveAll(filepath.Join(c.dataDir, "member"))
		}
		return fmt.Errorf("embedded: restore %s: %w", snapshotPath, err)
	}
	return nil
}

func dirAbsentOrEmpty(dir string) bool {
	entries, err := os.ReadDir(dir)
	return errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0)
}
