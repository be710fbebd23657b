package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rosterkit/roster/examples/internal/etcdclient"
	"github.com/rosterkit/roster/examples/internal/telemetry"
)

// Main runs the worker command: args are its flags (without the program
// name). It returns the exit code: 0 after a graceful stop, 1 when the
// worker could not start or stop cleanly, 2 for bad flags. The demo worker
// binary and the gateway's -workers processes both run it.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	etcd := fs.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	timeout := fs.Duration("etcd-timeout", 30*time.Second, "how long to wait for etcd to answer at start")
	fs.StringVar(&cfg.Service, "service", "worker", "service name; also the election and lock name")
	fs.StringVar(&cfg.ID, "id", "", "instance ID (default host-pid)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "HTTP listen address")
	fs.DurationVar(&cfg.TTL, "ttl", 5*time.Second, "lease TTL of the registration, candidacy and lock")
	fs.StringVar(&cfg.Namespace, "namespace", "/roster", "key namespace")
	withParent := fs.Bool("with-parent", false, "stop gracefully when standard input closes (the gateway's -workers use it, so workers never outlive it)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	// The SDK logs state changes; what the worker does is said on stdout.
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("worker", cfg.ID)
	cfg.Say = func(msg string) { fmt.Fprintf(stdout, "worker %s: %s\n", cfg.ID, msg) }
	if err := run(cfg, *etcd, *timeout, *withParent, stdout); err != nil {
		fmt.Fprintf(stderr, "worker %s: %v\n", cfg.ID, err)
		return 1
	}
	return 0
}

func run(cfg Config, etcd string, timeout time.Duration, withParent bool, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if withParent {
		ctx = stopWithParent(ctx)
	}

	metrics, err := telemetry.New()
	if err != nil {
		return err
	}
	defer metrics.Close()
	cfg.MeterProvider, cfg.Metrics = metrics.Provider, metrics.Handler

	cli, err := etcdclient.Connect(ctx, strings.Split(etcd, ","), timeout, cfg.Say)
	if err != nil {
		return err
	}
	defer cli.Close()
	cfg.Client = cli

	startCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := Start(startCtx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "worker %s serving at http://%s (pid %d, metrics at /metrics)\n", w.ID(), w.Addr(), os.Getpid())

	<-ctx.Done()
	stop() // a second signal kills the process the default way
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := w.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintf(stdout, "worker %s stopped\n", w.ID())
	return nil
}

// stopWithParent returns a context that also ends when standard input
// closes: the gateway holds the other end, so a gateway that dies, even by
// kill -9, takes its workers down gracefully.
func stopWithParent(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx
}
