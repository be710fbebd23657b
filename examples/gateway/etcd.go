package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
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
}

// connect returns a client, and the embedded member when the gateway runs
// one (nil otherwise).
func (f etcdFlags) connect(ctx context.Context) (*clientv3.Client, *embedded.Server, error) {
	if f.endpoints != "" {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   strings.Split(f.endpoints, ","),
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		return cli, nil, err
	}
	opts := []embedded.Option{embedded.WithClientAddr(f.listen)}
	if f.dataDir != "" {
		opts = append(opts, embedded.WithDataDir(f.dataDir))
	}
	if f.name != "" {
		opts = append(opts, embedded.WithName(f.name))
	}
	if f.peer != "" {
		opts = append(opts, embedded.WithPeerAddr(f.peer))
	}
	if f.cluster != "" {
		members, err := parseCluster(f.cluster)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, embedded.WithCluster(f.token, members...))
	}
	srv, err := embedded.Start(ctx, opts...)
	if err != nil {
		return nil, nil, err
	}
	cli, err := srv.Client()
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return cli, srv, nil
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
