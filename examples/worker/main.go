// Command worker is the demo service: it registers itself, takes part in the
// election of its service and, while it leads, writes a report every second;
// POST /critical runs a critical section under the service's lock and
// answers with the fencing token it held. SIGINT or SIGTERM make it drain,
// finish in-flight requests, deregister, resign and exit 0.
//
//	go run ./examples/worker -etcd 127.0.0.1:2379
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/examples/internal/worker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg worker.Config
	etcd := flag.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	flag.StringVar(&cfg.Service, "service", "worker", "service name; also the election and lock name")
	flag.StringVar(&cfg.ID, "id", "", "instance ID (default host-pid)")
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "HTTP listen address")
	flag.DurationVar(&cfg.TTL, "ttl", 5*time.Second, "lease TTL")
	flag.StringVar(&cfg.Namespace, "namespace", "/roster", "key namespace")
	flag.Parse()
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(*etcd, ","),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return err
	}
	defer cli.Close()
	cfg.Client = cli

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, err := worker.Start(startCtx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("worker %s serving at http://%s\n", w.ID(), w.Addr())

	<-ctx.Done()
	stop() // a second signal kills the process the default way
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := w.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Printf("worker %s stopped\n", w.ID())
	return nil
}
