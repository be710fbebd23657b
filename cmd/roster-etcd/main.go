// Command roster-etcd runs an embedded etcd member: a coordination server in
// one binary, with nothing else to install.
//
//	go run ./cmd/roster-etcd                         # one member on 127.0.0.1:2379
//	go run ./cmd/roster-etcd -data-dir ./data        # keep the data across restarts
//
// It prints the client endpoint, serves until SIGINT or SIGTERM, then stops.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rosterkit/roster/embedded"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "roster-etcd:", err)
		os.Exit(1)
	}
}

func run() error {
	client := flag.String("listen", "127.0.0.1:2379", "client address (host:port; port 0 picks a free one)")
	peer := flag.String("peer", "127.0.0.1:0", "peer address (host:port)")
	dataDir := flag.String("data-dir", "", "data directory, kept across restarts (default: a temporary one)")
	name := flag.String("name", embedded.DefaultName, "member name")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := []embedded.Option{
		embedded.WithName(*name),
		embedded.WithClientAddr(*client),
		embedded.WithPeerAddr(*peer),
	}
	if *dataDir != "" {
		opts = append(opts, embedded.WithDataDir(*dataDir))
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(startCtx, opts...)
	if err != nil {
		return err
	}
	fmt.Printf("etcd member %q serving clients at %s (data in %s)\n", srv.Name(), srv.Endpoints()[0], srv.DataDir())
	fmt.Println("press Ctrl-C to stop")

	select {
	case <-ctx.Done():
	case <-srv.Done():
		return fmt.Errorf("member stopped unexpectedly")
	}
	return srv.Close()
}
