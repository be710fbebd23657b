package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/examples/internal/etcdclient"
)

// etcdFlags say where the gateway's etcd is: an existing cluster (-etcd), or
// an embedded member, alone or one of a static cluster of gateways.
type etcdFlags struct {
	endpoints string
	listen    string
	dataDir   string
	name      string
	peer      string
	cluster   string
	token     string
	replace   bool
	timeout   time.Duration
}

// dir is the member's data dir: the flag's, or in cluster mode
// ./data/<name>, so that a gateway started again with the same command
// rejoins with its data. "" means a temporary one.
func (f etcdFlags) dir() string {
	if f.dataDir != "" || f.cluster == "" {
		return f.dataDir
	}
	return filepath.Join("data", f.name)
}

// connect returns a client, and the embedded member when the gateway runs
// one (nil otherwise).
func (f etcdFlags) connect(ctx context.Context, say func(string), log *slog.Logger, mp metric.MeterProvider) (*clientv3.Client, *embedded.Server, error) {
	if f.endpoints != "" {
		cli, err := etcdclient.Connect(ctx, strings.Split(f.endpoints, ","), f.timeout, say)
		return cli, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	opts := []embedded.Option{embedded.WithClientAddr(f.listen), embedded.WithLogger(log), embedded.WithMeterProvider(mp)}
	dir := f.dir()
	if dir != "" {
		opts = append(opts, embedded.WithDataDir(dir))
	}
	if f.name != "" {
		opts = append(opts, embedded.WithName(f.name))
	}
	if f.peer != "" {
		opts = append(opts, embedded.WithPeerAddr(f.peer))
	}
	var srv *embedded.Server
	var err error
	switch {
	case f.cluster == "":
		where := "a temporary data dir"
		if dir != "" {
			where = dir
		}
		say(fmt.Sprintf("starting embedded etcd at %s (data in %s)", f.listen, where))
		srv, err = embedded.Start(ctx, opts...)
	default:
		members, perr := parseCluster(f.cluster)
		if perr != nil {
			return nil, nil, perr
		}
		if f.name == "" {
			return nil, nil, errors.New("-cluster needs -name: which of its members this gateway is")
		}
		if f.replace && !hasMemberData(dir) {
			srv, err = replaceMember(ctx, f, members, dir, opts, say)
			break
		}
		if f.replace {
			say(fmt.Sprintf("-replace: %s holds member %s's data already; starting it as it is", dir, f.name))
		}
		var others []string
		for _, m := range members {
			if m.Name != f.name {
				others = append(others, m.Name)
			}
		}
		say(fmt.Sprintf("starting embedded etcd member %s at %s (data in %s); waiting for a majority of the cluster (%s must start too; giving up after %v)",
			f.name, f.listen, dir, strings.Join(others, ", "), f.timeout))
		srv, err = embedded.Start(ctx, append(opts, embedded.WithCluster(f.token, members...))...)
		if err != nil && strings.Contains(err.Error(), "already been bootstrapped") {
			err = fmt.Errorf("%w\nthe cluster knows member %s but %s holds no data of it (lost or deleted): start again with -replace to remove the stale member and add this one afresh", err, f.name, dir)
		}
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("embedded etcd did not start within %v: %w", f.timeout, err)
		}
		return nil, nil, err
	}
	cli, err := srv.Client()
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return cli, srv, nil
}

// hasMemberData reports whether dir holds an etcd member's data (its
// write-ahead log).
func hasMemberData(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "member", "wal"))
	return err == nil
}

// replaceMember brings back a member whose data is lost: it removes the
// stale member of that name from the cluster and adds this one afresh,
// which then fetches the cluster's data from its peers.
func replaceMember(ctx context.Context, f etcdFlags, members []embedded.Member, dir string, opts []embedded.Option, say func(string)) (*embedded.Server, error) {
	var peers []string
	for _, m := range members {
		if m.Name != f.name {
			peers = append(peers, m.PeerURL)
		} else if f.peer == "" {
			f.peer = strings.TrimPrefix(strings.TrimPrefix(m.PeerURL, "http://"), "https://")
			opts = append(opts, embedded.WithPeerAddr(f.peer))
		}
	}
	say(fmt.Sprintf("-replace: asking the other members (%s) for the cluster", strings.Join(peers, ", ")))
	endpoints, err := clientURLs(ctx, peers)
	if err != nil {
		return nil, fmt.Errorf("-replace: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("-replace: %w", err)
	}
	defer cli.Close()
	if err := etcdclient.Wait(ctx, cli, f.timeout, say); err != nil {
		return nil, fmt.Errorf("-replace: %w", err)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("-replace: member list: %w", err)
	}
	for _, m := range ml.Members {
		if m.Name == f.name || (m.Name == "" && slicesContain(m.PeerURLs, "http://"+f.peer)) {
			say(fmt.Sprintf("-replace: removing the stale member %s (ID %x)", f.name, m.ID))
			if err := embedded.RemoveMember(ctx, cli, m.ID); err != nil {
				return nil, fmt.Errorf("-replace: remove the stale member %s: %w", f.name, err)
			}
		}
	}
	say(fmt.Sprintf("-replace: adding member %s afresh (data in %s)", f.name, dir))
	srv, err := embedded.Join(ctx, cli, opts...)
	if err != nil {
		return nil, fmt.Errorf("-replace: join as %s: %w", f.name, err)
	}
	return srv, nil
}

func slicesContain(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// clientURLs asks members for the cluster's client URLs through their peer
// URLs, where etcd serves its member list (/members) to other members.
func clientURLs(ctx context.Context, peers []string) ([]string, error) {
	var errs []error
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, p := range peers {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p, "/")+"/members", nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp, err := hc.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var ms []struct {
			ClientURLs []string `json:"clientURLs"`
		}
		err = json.NewDecoder(resp.Body).Decode(&ms)
		resp.Body.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/members: %w", p, err))
			continue
		}
		var urls []string
		for _, m := range ms {
			urls = append(urls, m.ClientURLs...)
		}
		if len(urls) > 0 {
			return urls, nil
		}
	}
	return nil, fmt.Errorf("no other member answered: %w", errors.Join(errs...))
}

// parseCluster reads etcd's --initial-cluster form: name=url,name=url.
func parseCluster(s string) ([]embedded.Member, error) {
	var ms []embedded.Member
	for _, part := range strings.Split(s, ",") {
		name, url, ok := strings.Cut(part, "=")
		if !ok || name == "" || url == "" {
			return nil, fmt.Errorf("-cluster %q: want name=http://host:port,…", s)
		}
		ms = append(ms, embedded.Member{Name: name, PeerURL: url})
	}
	return ms, nil
}
