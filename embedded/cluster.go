package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
)

// ErrLastMember is returned by Leave on a single-member cluster: a cluster
// cannot remove its last member.
var ErrLastMember = errors.New("embedded: cannot leave: last member of the cluster")

// StartCluster bootstraps an n-member cluster inside this process, for tests
// and demos. Members are named "<name>-<i>" (name from WithName) and listen on
// free loopback ports; with WithDataDir each keeps its data in a subdirectory.
// Every option applies to every member; addresses and WithCluster are chosen
// here and override the options.
func StartCluster(ctx context.Context, n int, opts ...Option) ([]*Server, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: cluster of %d members", ErrInvalidConfig, n)
	}
	base := newConfig(opts)
	if base.clusterToken == "" {
		base.clusterToken = defaultClusterToken
	}
	// Another process may take a port between choice and bind. The members'
	// peer URLs are part of the bootstrap and written into their data, so
	// start over from empty data dirs, if they were empty to begin with.
	fresh := true
	for i := range n {
		fresh = fresh && dirAbsentOrEmpty(base.memberDir(i))
	}
	const attempts = 3
	for i := 1; ; i++ {
		servers, err := startCluster(ctx, n, base)
		if err == nil || !errors.Is(err, ErrPortInUse) || !fresh || i == attempts {
			return servers, err
		}
		for i := range n {
			if err := os.RemoveAll(base.memberDir(i)); err != nil {
				return nil, fmt.Errorf("embedded: clean up after a port clash: %w", err)
			}
		}
	}
}

func (c config) memberName(i int) string { return c.name + "-" + strconv.Itoa(i) }

// memberDir is member i's data dir under WithDataDir; "" for a temporary one.
func (c config) memberDir(i int) string {
	if c.dataDir == "" {
		return ""
	}
	return filepath.Join(c.dataDir, c.memberName(i))
}

func startCluster(ctx context.Context, n int, base config) ([]*Server, error) {
	cfgs := make([]config, n)
	members := make([]Member, n)
	for i := range cfgs {
		c := base
		c.name, c.dataDir = base.memberName(i), base.memberDir(i)
		c.clientAddr, c.peerAddr, c.cluster = "", "", nil
		if err := c.validate(); err != nil {
			return nil, err
		}
		rc, _, err := c.resolvePorts()
		if err != nil {
			return nil, err
		}
		rc.skipAuthSetup = i > 0 // one member enables auth for all
		cfgs[i], members[i] = rc, Member{Name: rc.name, PeerURL: rc.peerURL()}
	}
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range cfgs {
		cfgs[i].cluster = members
		wg.Go(func() { servers[i], errs[i] = startResolved(ctx, cfgs[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range servers {
			if s != nil {
				s.Abort()
			}
		}
		return nil, err
	}
	return servers, nil
}

// Join adds a new member to the running cluster that cli talks to and starts
// it, as an operator does with "etcdctl member add" followed by a start with
// --initial-cluster-state=existing. It returns once the member has caught up
// and serves clients. If the member cannot start, it is removed from the
// cluster again so that it does not count against the quorum.
//
// etcd refuses a new voting member until the member handling the request has
// been connected to a quorum for 5 s; Join keeps asking until then, bounded
// by ctx. Give the member its own WithName and, to restart it later,
// WithDataDir. A data dir that already holds a member's data means the
// member joined before: Join then restarts it, as Start would, instead of
// adding it a second time.
func Join(ctx context.Context, cli *clientv3.Client, opts ...Option) (*Server, error) {
	if cli == nil {
		return nil, fmt.Errorf("embedded: join: %w", roster.ErrNilClient)
	}
	c := newConfig(opts)
	c.existing = true
	if err := c.validate(); err != nil {
		return nil, err
	}
	if hasMember(c.dataDir) {
		return start(ctx, c)
	}
	c, _, err := c.resolvePorts()
	if err != nil {
		return nil, err
	}
	var resp *clientv3.MemberAddResponse
	err = whenSafe(ctx, func() (err error) {
		resp, err = cli.MemberAdd(ctx, []string{c.peerURL()})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: join as %q: member add: %w", c.name, err)
	}
	// The member list as "etcdctl member add" prints it: etcd checks that
	// it matches the running cluster's, members not yet started included.
	c.cluster = nil
	for _, m := range resp.Members {
		name := m.Name
		if m.ID == resp.Member.ID {
			name = c.name
		}
		for _, u := range m.PeerURLs {
			c.cluster = append(c.cluster, Member{Name: name, PeerURL: u})
		}
	}
	s, err := startJoining(ctx, c)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultOpTimeout)
		defer cancel()
		if _, rerr := cli.MemberRemove(rctx, resp.Member.ID); rerr != nil {
			err = errors.Join(err, fmt.Errorf("embedded: undo member add: %w", rerr))
		}
		return nil, err
	}
	s.maint.log.Info("joined the cluster", s.maint.self(), slog.Int(KeyMembers, len(resp.Members)))
	return s, nil
}

// hasMember reports whether dir holds a member's data (its write-ahead log).
func hasMember(dir string) bool {
	if dir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "member", "wal"))
	return err == nil
}

// startJoining starts a member added by Join. On start, etcd compares the
// member list it was given with the one it reads from a peer, and a peer
// that has not yet applied the addition (it learns of the commit by the
// next heartbeat) still lists one member fewer; the start is then tried
// again, bounded by ctx.
func startJoining(ctx context.Context, c config) (*Server, error) {
	const (
		every    = 100 * time.Millisecond
		attempts = 20
	)
	for i := 1; ; i++ {
		s, err := startResolved(ctx, c)
		if err == nil || i == attempts || !strings.Contains(err.Error(), "member count is unequal") {
			return s, err
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// Leave removes this member from its cluster through the other members, then
// stops it. Like Join, it waits (bounded by ctx) while etcd refuses the
// change as unsafe for the quorum. The data dir is of no further use to this
// cluster afterwards. A single-member cluster cannot be left: ErrLastMember.
func (s *Server) Leave(ctx context.Context) error {
	var others []string
	for _, m := range s.Members() {
		if m.ID != s.ID() {
			others = append(others, m.ClientURLs...)
		}
	}
	if len(others) == 0 {
		return ErrLastMember
	}
	cfg, err := s.ClientConfig()
	if err != nil {
		return err
	}
	cfg.Endpoints = others
	cli, err := clientv3.New(cfg)
	if err != nil {
		return fmt.Errorf("embedded: leave: %w", err)
	}
	defer cli.Close()
	if err := RemoveMember(ctx, cli, s.ID()); err != nil {
		return fmt.Errorf("embedded: leave: %w", err)
	}
	s.maint.log.Info("left the cluster", s.maint.self(), slog.Int(KeyMembers, len(s.Members())-1))
	return s.Close()
}

// RemoveMember removes the member of the given ID from the cluster cli talks
// to, as "etcdctl member remove" does, waiting (bounded by ctx) while etcd
// refuses the change as unsafe for the quorum. The removed member stops
// itself once it learns of it. Leave is the same for a member of this
// process.
func RemoveMember(ctx context.Context, cli *clientv3.Client, id uint64) error {
	if cli == nil {
		return fmt.Errorf("embedded: remove member: %w", roster.ErrNilClient)
	}
	err := whenSafe(ctx, func() error {
		_, err := cli.MemberRemove(ctx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("embedded: remove member %s: %w", hexID(id), err)
	}
	return nil
}

// whenSafe runs a membership change, trying again while etcd refuses it as
// unsafe for now: etcd counts a peer toward quorum only after 5 s of steady
// connection, so a change soon after a member (re)started is refused at first.
// A refused change was not applied, so trying again cannot apply it twice.
func whenSafe(ctx context.Context, change func() error) error {
	const every = 200 * time.Millisecond
	for {
		err := change()
		if !errors.Is(err, rpctypes.ErrUnhealthy) && !errors.Is(err, rpctypes.ErrMemberNotEnoughStarted) {
			return err
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (cluster still refuses: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
