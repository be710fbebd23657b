package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/registry"
	"github.com/rosterkit/roster/rostergrpc"
)

var errUsage = errors.New("bad usage")

type serverConfig struct {
	etcd       []string
	listen     string
	service    string
	id         string
	weight     int
	ttl        time.Duration
	delay      time.Duration // added to every call, to watch roster_p2c avoid a slow server
	drainGrace time.Duration // between the drain and the stop, for clients to hear of it
	ready      func(addr string)
}

func parseServer(args []string, stderr io.Writer) (serverConfig, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg serverConfig
	etcd := fs.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:0", "gRPC listen address")
	fs.StringVar(&cfg.service, "service", "echo", "roster service name")
	fs.StringVar(&cfg.id, "id", "", "instance ID (default host-pid)")
	fs.IntVar(&cfg.weight, "weight", 0, "instance weight for roster_weighted and ring_hash (0 = 1)")
	fs.DurationVar(&cfg.ttl, "ttl", 5*time.Second, "lease TTL of the registration")
	fs.DurationVar(&cfg.delay, "delay", 0, "time every call takes")
	fs.DurationVar(&cfg.drainGrace, "drain-grace", 500*time.Millisecond, "time between the drain and the stop")
	if err := fs.Parse(args); err != nil {
		return cfg, errUsage
	}
	cfg.etcd = strings.Split(*etcd, ",")
	if cfg.id == "" {
		host, _ := os.Hostname()
		cfg.id = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return cfg, nil
}

// echo is the service: UnaryCall answers with the server's ID.
type echo struct {
	testgrpc.UnimplementedTestServiceServer
	id    string
	delay time.Duration
}

func (e *echo) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if e.delay > 0 {
		t := time.NewTimer(e.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &testgrpc.SimpleResponse{ServerId: e.id}, nil
}

// serve runs a server until ctx ends, then drains it and stops gracefully.
func serve(ctx context.Context, cfg serverConfig, out io.Writer) error {
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "server %s: %s\n", cfg.id, fmt.Sprintf(format, args...))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.etcd, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()

	lis, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, &echo{id: cfg.id, delay: cfg.delay})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer srv.Stop()

	reg, err := registry.New(cli, registry.WithTTL(cfg.ttl))
	if err != nil {
		return err
	}
	defer reg.Close()
	// The health service follows the registration: SERVING now,
	// NOT_SERVING once drained, by us or by an operator.
	h, err := rostergrpc.NewHealth(reg, hs)
	if err != nil {
		return err
	}
	defer h.Close()
	inst := roster.Instance{Service: cfg.service, ID: cfg.id, Addr: lis.Addr().String(), Weight: cfg.weight}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := reg.Register(rctx, inst); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	h.Sync()
	say("serving %s on %s", cfg.service, inst.Addr)
	if cfg.ready != nil {
		cfg.ready(inst.Addr)
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}

	// Graceful stop: drain (clients stop picking us within a watch's
	// round trip), let them hear of it, finish the calls in flight, go.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ttl+10*time.Second)
	defer cancel()
	if err := h.Drain(sctx, cfg.service, cfg.id); err != nil {
		say("drain: %v", err)
	} else {
		say("draining")
	}
	t := time.NewTimer(cfg.drainGrace)
	select {
	case <-t.C:
	case <-sctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		srv.Stop()
	}
	if err := reg.Shutdown(sctx); err != nil {
		return fmt.Errorf("deregister: %w", err)
	}
	say("stopped")
	return nil
}
