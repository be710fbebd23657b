package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
)

// Server is one running etcd member inside this process.
type Server struct {
	cfg     config
	etcd    *embed.Etcd
	dataDir string
	tempDir bool // dataDir was made by Start and goes with Close

	maint *maintainer // nil until the member serves

	mu          sync.Mutex
	grpcServers []*grpc.Server

	closeOnce sync.Once
	closeErr  error
}

// Start starts a member and waits, bounded by ctx, until it serves clients.
// With no options it is a single-member cluster on free loopback ports with
// its data in a temporary directory.
func Start(ctx context.Context, opts ...Option) (*Server, error) {
	return start(ctx, newConfig(opts))
}

// start resolves ports and retries with fresh ones when a port this package
// chose was taken by someone else between choosing and binding.
func start(ctx context.Context, c config) (*Server, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	const attempts = 5
	for i := 1; ; i++ {
		rc, chosen, err := c.resolvePorts()
		if err != nil {
			return nil, err
		}
		s, err := startResolved(ctx, rc)
		var pe *portInUseError
		if err == nil || !errors.As(err, &pe) || !slices.Contains(chosen, pe.addr) || i == attempts {
			return s, err
		}
	}
}

func startResolved(ctx context.Context, c config) (*Server, error) {
	s := &Server{cfg: c, dataDir: c.dataDir}
	if s.dataDir == "" {
		dir, err := os.MkdirTemp("", "roster-etcd-*")
		if err != nil {
			return nil, fmt.Errorf("embedded: create data dir: %w", err)
		}
		s.dataDir, s.tempDir = dir, true
	}
	ec, err := c.etcdConfig(s.dataDir, s.registerGRPC)
	if err != nil {
		s.removeTempDir()
		return nil, err
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		s.removeTempDir()
		return nil, startError(c, err)
	}
	s.etcd = e
	if err := s.awaitReady(ctx); err != nil {
		s.Abort()
		return nil, err
	}
	if err := s.setupAuth(ctx); err != nil {
		s.Abort()
		return nil, err
	}
	s.maint = startMaintainer(s)
	return s, nil
}

func (s *Server) awaitReady(ctx context.Context) error {
	select {
	case <-s.etcd.Server.ReadyNotify():
		return nil
	case err, ok := <-s.etcd.Err():
		if !ok {
			err = errors.New("stopped")
		}
		return fmt.Errorf("embedded: member %q failed while starting: %w", s.cfg.name, err)
	case <-s.etcd.Server.StopNotify():
		return fmt.Errorf("embedded: member %q stopped while starting", s.cfg.name)
	case <-ctx.Done():
		return fmt.Errorf("embedded: member %q not ready (a cluster member waits for a quorum of its peers): %w",
			s.cfg.name, ctx.Err())
	}
}

// registerGRPC records each gRPC server etcd creates, so Close can cut open
// streams at once instead of waiting out etcd's graceful drain (~7 s).
func (s *Server) registerGRPC(gs *grpc.Server) {
	s.mu.Lock()
	s.grpcServers = append(s.grpcServers, gs)
	s.mu.Unlock()
}

// Close stops the member: its maintenance stops (a defragmentation in
// progress, which cannot be interrupted, is waited for), open client
// streams are cut at once, the listeners are freed, and a temporary data
// dir is removed. A leader hands
// its leadership to a peer first. Close is idempotent and safe to call
// concurrently; the first call's error is every call's.
//
// A single member closes in milliseconds. A member of a running cluster takes
// up to about a second: etcd drains its peer connections for at most that
// long, and one that just served a peer's probe is usually still busy. A few
// of etcd's goroutines serving those connections may outlive Close by up to
// 5 s. A leader whose peers do not take over within one election timeout
// (they are stopping too, say) stops without handing over, rather than
// waiting out etcd's request timeout.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown(false) })
	return s.closeErr
}

// Abort stops the member as a crash would: no leadership transfer and no
// drain, so a leader's peers must time out and elect another. It is for fault
// tests; with WithDataDir the member can be started again on its data.
// Abort and Close share one shutdown: whichever comes first wins.
func (s *Server) Abort() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown(true) })
	return s.closeErr
}

func (s *Server) shutdown(hard bool) error {
	if s.etcd == nil {
		return nil
	}
	s.maint.stop()
	s.mu.Lock()
	gss := s.grpcServers
	s.mu.Unlock()
	for _, gs := range gss {
		gs.Stop()
	}
	// A member that leads and could not hand over in time stops without
	// etcd's own, longer attempt.
	if hard || s.handOver() {
		s.etcd.Server.HardStop()
	}
	s.etcd.Close()
	return s.removeTempDir()
}

func (s *Server) removeTempDir() error {
	if !s.tempDir {
		return nil
	}
	if err := os.RemoveAll(s.dataDir); err != nil {
		return fmt.Errorf("embedded: remove data dir: %w", err)
	}
	return nil
}

// Done is closed when the member has stopped, whether by Close, by Leave, or
// because etcd stopped it (for example after it was removed from the
// cluster, which Removed tells).
func (s *Server) Done() <-chan struct{} { return s.etcd.Server.StopNotify() }

// Name is the member's name.
func (s *Server) Name() string { return s.cfg.name }

// DataDir is where the member keeps its data.
func (s *Server) DataDir() string { return s.dataDir }

// ID is the member's ID in its cluster.
func (s *Server) ID() uint64 { return uint64(s.etcd.Server.MemberID()) }

// Endpoints are the client URLs the member serves, with the bound ports.
func (s *Server) Endpoints() []string { return []string{s.cfg.clientURL()} }

// PeerURL is the URL other members reach this one at.
func (s *Server) PeerURL() string { return s.cfg.peerURL() }

// MetricsURL is the URL of the listener WithMetricsAddr asked for, which
// serves /metrics and /health; empty without it.
func (s *Server) MetricsURL() string { return s.cfg.metricsURL() }

// Etcd is the etcd server this member runs, for what this package does not
// wrap: its metrics, its raft status, its peer transport. Closing or
// reconfiguring it behind the Server's back is the caller's responsibility.
func (s *Server) Etcd() *embed.Etcd { return s.etcd }
