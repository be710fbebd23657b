package embedded

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// Defaults of SnapshotSchedule.
const (
	DefaultSnapshotInterval = time.Hour
	DefaultSnapshotKeep     = 24
)

// SnapshotSchedule has a member write a snapshot of its data to Dir every
// Interval (the first one an Interval after Start), keeping the newest Keep
// of them. Each file, named
// "<member name>-<UTC time>.db", holds what Snapshot writes, the format of
// "etcdctl snapshot save": Restore and "etcdutl snapshot restore" both read
// it. A file of that name is complete: it is written under a temporary name,
// checked against its integrity hash, synced and only then renamed; a write
// cut short (a crash, a full disk) leaves at most a hidden ".part" file,
// which the next start removes. Other files in Dir are never touched.
//
// A failed snapshot is logged and counted in Status.Snapshots, never fatal:
// the next one is tried an Interval later. Each member with a schedule
// writes its own snapshots; in a cluster one member's are enough for a
// backup, and members on one host need a Dir each.
//
// Dir is required. Zero Interval and Keep take the defaults (hourly, the
// last 24); negative values are an error wrapping ErrInvalidConfig.
type SnapshotSchedule struct {
	Dir      string
	Interval time.Duration
	Keep     int
}

func (s SnapshotSchedule) validate() error {
	switch {
	case s.Dir == "":
		return fmt.Errorf("%w: snapshot schedule without a Dir", ErrInvalidConfig)
	case s.Interval < 0:
		return fmt.Errorf("%w: snapshot Interval %v is negative", ErrInvalidConfig, s.Interval)
	case s.Keep < 0:
		return fmt.Errorf("%w: snapshot Keep %d is negative", ErrInvalidConfig, s.Keep)
	}
	return nil
}

func (s SnapshotSchedule) withDefaults() SnapshotSchedule {
	if s.Interval == 0 {
		s.Interval = DefaultSnapshotInterval
	}
	if s.Keep == 0 {
		s.Keep = DefaultSnapshotKeep
	}
	return s
}

// snapshotTime names snapshots so that names sort by time.
const snapshotTime = "20060102T150405.000Z"

// runSnapshots takes a snapshot every Interval until the maintainer stops.
func (m *maintainer) runSnapshots() {
	sched := *m.cfg.snapshots
	m.removeParts(sched.Dir)
	t := time.NewTicker(sched.Interval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.s.etcd.Server.StopNotify():
			return
		case <-t.C:
		}
		m.snapshotOnce(sched)
	}
}

// snapshotOnce writes one snapshot and prunes old ones, recording the
// outcome.
func (m *maintainer) snapshotOnce(sched SnapshotSchedule) {
	start := time.Now()
	path, n, err := m.writeSnapshot(sched.Dir, start)
	if err == nil {
		err = m.prune(sched.Dir, sched.Keep)
	}
	// Logged before it is counted: whoever sees it in Status finds its record.
	m.met.snapshotted(m.ctx, err)
	if err != nil {
		m.log.Warn("snapshot failed", m.self(), slog.String(KeyPath, sched.Dir), slog.Any(KeyErr, err))
	} else {
		m.log.Info("snapshot taken", m.self(), slog.String(KeyPath, path), slog.Int64(KeySize, n),
			slog.Duration(KeyTook, time.Since(start)))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.snaps.Failures++
		m.snaps.Err = err
		return
	}
	m.snaps.Count++
	m.snaps.Err = nil
	m.snaps.Last, m.snaps.LastPath, m.snaps.LastSize = time.Now(), path, n
}

// writeSnapshot writes a snapshot to dir atomically: a reader of dir sees
// either no file or a complete one.
func (m *maintainer) writeSnapshot(dir string, at time.Time) (string, int64, error) {
	name := m.s.cfg.name + "-" + at.UTC().Format(snapshotTime) + ".db"
	path := filepath.Join(dir, name)
	n, err := writeAtomic(path, func(f *os.File) (int64, error) {
		w := bufio.NewWriterSize(f, 1<<20)
		n, err := m.s.Snapshot(m.ctx, w)
		if err != nil {
			return n, err
		}
		return n, w.Flush()
	})
	return path, n, err
}

// writeAtomic writes path through fill: first to a hidden ".part" file in
// the same directory, synced, then renamed over path, and the directory
// synced so that the rename survives a crash. On any failure the part is
// removed and path is left as it was.
func writeAtomic(path string, fill func(*os.File) (int64, error)) (n int64, err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".*.part")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if n, err = fill(f); err != nil {
		return n, err
	}
	if err = f.Sync(); err != nil {
		return n, err
	}
	if err = f.Close(); err != nil {
		return n, err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return n, err
	}
	return n, syncDir(dir)
}

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ownSnapshot matches the names this member gives its snapshots.
func (m *maintainer) ownSnapshot() *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(m.s.cfg.name) + `-\d{8}T\d{6}\.\d{3}Z\.db$`)
}

// prune removes this member's snapshots beyond the newest keep.
func (m *maintainer) prune(dir string, keep int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	own := m.ownSnapshot()
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && own.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for len(names) > keep {
		if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
			return err
		}
		names = names[1:]
	}
	return nil
}

// removeParts deletes parts of this member's snapshots left by a crash.
func (m *maintainer) removeParts(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	part := regexp.MustCompile(`^\.` + regexp.QuoteMeta(m.s.cfg.name) + `-\d{8}T\d{6}\.\d{3}Z\.db\.\d+\.part$`)
	for _, e := range entries {
		if part.MatchString(e.Name()) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
