package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
)

// serve starts the member (bootstrapping, joining or restarting it), says
// where it serves, and stops it when ctx ends. A member removed from its
// cluster stops by itself, and serve returns nil.
func serve(ctx context.Context, f *flags, stdout, stderr io.Writer) error {
	opts := f.options(stderr)
	var srv *embedded.Server
	var err error
	switch {
	case len(f.joinURLs) > 0:
		fmt.Fprintf(stdout, "joining member %q to the cluster at %v\n", f.name, f.joinURLs)
		srv, err = join(ctx, f, opts)
	default:
		if len(f.members) > 0 {
			fmt.Fprintf(stdout, "starting member %q; it serves once a quorum of --initial-cluster is up\n", f.name)
		}
		srv, err = embedded.Start(ctx, opts...)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while starting: %w", err)
		}
		return err
	}
	fmt.Fprintf(stdout, "etcd member %q (%s) serving clients at %s (data in %s)\n",
		srv.Name(), memberID(srv.ID()), srv.Endpoints()[0], srv.DataDir())
	if u := srv.MetricsURL(); u != "" {
		fmt.Fprintf(stdout, "metrics at %s/metrics\n", u)
	}
	select {
	case <-ctx.Done():
		return srv.Close()
	case <-srv.Done():
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	removed, rerr := srv.Removed(rctx)
	cancel()
	srv.Close()
	switch {
	case removed:
		fmt.Fprintf(stdout, "member %q was removed from the cluster; its data dir is of no further use\n", srv.Name())
		return nil
	case rerr != nil:
		return fmt.Errorf("member stopped unexpectedly (and whether it was removed is not known: %w)", rerr)
	}
	return errors.New("member stopped unexpectedly")
}

// join adds the member through a client of the running cluster, which
// authenticates as this member does towards its own clients: its client
// certificate and the root password.
func join(ctx context.Context, f *flags, opts []embedded.Option) (*embedded.Server, error) {
	cfg := clientv3.Config{Endpoints: f.joinURLs, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Context: ctx}
	if f.clientTLS != nil {
		tc, err := clientTLS(f.clientTLS.CertFile, f.clientTLS.KeyFile, f.clientTLS.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	if f.password != "" {
		cfg.Username, cfg.Password = "root", f.password
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("client of %v: %w", f.joinURLs, err)
	}
	defer cli.Close()
	return embedded.Join(ctx, cli, opts...)
}

func clientTLS(cert, key, ca string) (*tls.Config, error) {
	if cert == "" && key == "" && ca == "" {
		return nil, nil
	}
	info := transport.TLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: ca}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	return tc, nil
}

func memberID(id uint64) string { return fmt.Sprintf("%x", id) }
