// Command roster-etcd runs an embedded etcd member: a coordination server in
// one binary, with nothing else to install. Its flags carry etcd's own names.
//
//	roster-etcd                                   # one member on 127.0.0.1:2379
//	roster-etcd --data-dir ./data                 # keep the data across restarts
//	roster-etcd --name a --data-dir a --listen-client-urls http://127.0.0.1:2379 \
//	  --listen-peer-urls http://127.0.0.1:2380 \
//	  --initial-cluster a=http://127.0.0.1:2380,b=http://127.0.0.1:2382,c=http://127.0.0.1:2384
//
// It prints the client endpoint once the member serves, runs until SIGINT or
// SIGTERM, then stops. Run with -h for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "roster-etcd:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "roster-etcd:", err)
		os.Exit(1)
	}
}

// errUsage marks a bad command line: exit status 2, as flag's own errors.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, f, stdout, stderr)
}
