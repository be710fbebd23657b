package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rosterkit/roster/embedded"
)

// serve starts the member, says where it serves, and stops it when ctx ends.
func serve(ctx context.Context, f flags, stdout, stderr io.Writer) error {
	opts, err := f.options(stderr)
	if err != nil {
		return err
	}
	if f.initialCluster != "" {
		fmt.Fprintf(stdout, "starting member %q; it serves once a quorum of --initial-cluster is up\n", f.name)
	}
	srv, err := embedded.Start(ctx, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted while starting")
		}
		return err
	}
	fmt.Fprintf(stdout, "etcd member %q serving clients at %s (data in %s)\n", srv.Name(), srv.Endpoints()[0], srv.DataDir())
	select {
	case <-ctx.Done():
	case <-srv.Done():
		srv.Close()
		return errors.New("member stopped unexpectedly")
	}
	return srv.Close()
}
