package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"

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

// Removed reports whether the cluster has removed this member, to tell,
// once Done is closed, a removal from a failure. Etcd stops a removed
// member either way it learns of its removal, but only one way changes the
// member's own view: when the entry that removes it commits without it
// (it was paused, or slow), it learns of it from its peers refusing it and
// still lists itself. Removed then asks those peers, over the peer
// transport, which members they have: all at once, so that one that holds
// the question unanswered (paused, or behind a partition) does not keep
// the others from being heard. It returns with the first answer, or an
// error once none can answer or ctx ends.
func (s *Server) Removed(ctx context.Context) (bool, error) {
	var peers []string
	listed := false
	for _, m := range s.Members() {
		if m.ID == s.ID() {
			listed = true
		} else {
			peers = append(peers, m.PeerURLs...)
		}
	}
	if !listed || len(peers) == 0 {
		return !listed, nil // a last member cannot be removed
	}
	rt, err := rafthttp.NewRoundTripper(s.etcd.Config().PeerTLSInfo, time.Second)
	if err != nil {
		return false, fmt.Errorf("embedded: removed: peer transport: %w", err)
	}
	hc := &http.Client{Transport: rt}
	defer hc.CloseIdleConnections()
	cluster := s.etcd.Server.Cluster().ID().String()
	type answer struct {
		ids []uint64
		err error
	}
	answers := make(chan answer, len(peers))
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the others' questions, once one is answered
	for _, u := range peers {
		wg.Go(func() {
			ids, err := peerMembers(ctx, hc, u, cluster)
			answers <- answer{ids, err}
		})
	}
	var errs []error
	for range peers {
		a := <-answers
		if a.err == nil {
			return !slices.Contains(a.ids, s.ID()), nil
		}
		errs = append(errs, a.err)
	}
	return false, fmt.Errorf("embedded: removed: no peer answered: %w", errors.Join(errs...))
}

// peerMembers returns the IDs of the members that the member at peer URL u
// has, if it is of the given cluster: what etcd's peer API serves at
// /members, and a joining member reads.
func peerMembers(ctx context.Context, hc *http.Client, u, cluster string) ([]uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u, "/")+"/members", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	if got := resp.Header.Get("X-Etcd-Cluster-ID"); got != cluster {
		return nil, fmt.Errorf("%s: of cluster %q, not %s", req.URL, got, cluster)
	}
	var ms []struct {
		ID uint64 `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&ms); err != nil {
		return nil, fmt.Errorf("%s: %w", req.URL, err)
	}
	ids := make([]uint64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids, nil
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
