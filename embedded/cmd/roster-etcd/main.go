// Command roster-etcd runs an embedded etcd member: a coordination server in
// one binary, with nothing else to install. Its flags carry etcd's names.
//
//	roster-etcd                                   # one member on 127.0.0.1:2379
//	roster-etcd --data-dir ./data                 # keep the data across restarts
//
// Three members on one host, one shell each (across hosts, give each its
// host's address and TLS files):
//
//	roster-etcd --name a --data-dir a --listen-client-urls http://127.0.0.1:2379 \
//	  --listen-peer-urls http://127.0.0.1:2380 --initial-cluster-token demo \
//	  --initial-cluster a=http://127.0.0.1:2380,b=http://127.0.0.1:2382,c=http://127.0.0.1:2384
//	roster-etcd --name b --data-dir b --listen-client-urls http://127.0.0.1:2381 \
//	  --listen-peer-urls http://127.0.0.1:2382 --initial-cluster-token demo --initial-cluster …
//	roster-etcd --name c … # likewise, on 2383 and 2384
//
// A fourth joins through the running members, and later leaves:
//
//	roster-etcd --name d --data-dir d --listen-client-urls http://127.0.0.1:2385 \
//	  --listen-peer-urls http://127.0.0.1:2386 --join-endpoints http://127.0.0.1:2379
//	roster-etcd leave --endpoints http://127.0.0.1:2379 --name d
//
// A member started again with the same flags on its data dir restarts with
// everything it had. What embedded does, the flags do: TLS towards clients
// (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth) and peers
// (--peer-…), authentication (--root-password-file), auto-compaction
// (--auto-compaction-mode, --auto-compaction-retention), the backend quota
// (--quota-backend-bytes), the defragmentation policy (--auto-defrag,
// --defrag-…), NOSPACE recovery (--nospace-recovery), scheduled snapshots
// (--snapshot-dir, --snapshot-interval, --snapshot-keep) and etcd's metrics
// on a listener of their own (--listen-metrics-urls). Listeners stay on
// loopback unless TLS protects them or --insecure-non-loopback says so.
//
// It prints the client endpoint once the member serves, runs until SIGINT or
// SIGTERM, then stops; a member removed from its cluster exits by itself.
// Exit status: 0 after a clean stop, 2 for a bad command line (the message
// names the flags), 1 for any other failure. Run with -h for every flag.
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

	"github.com/rosterkit/roster/embedded"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// errUsage marks a bad command line: exit status 2, as flag's own errors.
var errUsage = errors.New("usage")

// exitCode reports err and says how to exit for it.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, embedded.ErrInsecureListen):
		fmt.Fprintln(stderr, "roster-etcd:", err)
		fmt.Fprintln(stderr, "roster-etcd: give TLS files (--cert-file/--key-file, --peer-cert-file/--peer-key-file) or --insecure-non-loopback")
		return 2
	case errors.Is(err, errUsage), errors.Is(err, embedded.ErrInvalidConfig):
		fmt.Fprintln(stderr, "roster-etcd:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "roster-etcd:", err)
		return 1
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "leave" {
		f, err := parseLeave(args[1:], stderr)
		if err != nil {
			return err
		}
		return leave(ctx, f, stdout)
	}
	f, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, f, stdout, stderr)
}
