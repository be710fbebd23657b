package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/rostergrpc"
)

type clientConfig struct {
	etcd     []string
	service  string
	policy   string
	n        int
	interval time.Duration
	quiet    bool
}

func parseClient(args []string, stderr io.Writer) (clientConfig, error) {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg clientConfig
	etcd := fs.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	fs.StringVar(&cfg.service, "service", "echo", "roster service name")
	fs.StringVar(&cfg.policy, "policy", rostergrpc.P2CName, "balancer: roster_p2c, roster_weighted, roster_hash or round_robin")
	fs.IntVar(&cfg.n, "n", 20, "calls to make")
	fs.DurationVar(&cfg.interval, "interval", 0, "pause between calls")
	fs.BoolVar(&cfg.quiet, "quiet", false, "print the summary only")
	if err := fs.Parse(args); err != nil {
		return cfg, errUsage
	}
	cfg.etcd = strings.Split(*etcd, ",")
	return cfg, nil
}

// serviceConfig picks the balancer and retries idempotent calls that met a
// server going away (UNAVAILABLE) on another one, over long enough for the
// balancer to hear of the dead connection (see the rostergrpc doc).
func serviceConfig(policy string) string {
	return `{"loadBalancingConfig":[{"` + policy + `":{}}],
	 "methodConfig":[{"name":[{"service":"grpc.testing.TestService"}],
	   "retryPolicy":{"maxAttempts":5,"initialBackoff":"0.05s","maxBackoff":"0.5s",
	     "backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}`
}

// callAll makes cfg.n calls through roster:///<service> and says who
// answered each; a failed call fails the command.
func callAll(ctx context.Context, cfg clientConfig, out io.Writer) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.etcd, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	d, err := discovery.New(cli)
	if err != nil {
		return err
	}
	defer d.Close()
	rb, err := rostergrpc.NewResolverBuilder(d)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("roster:///"+cfg.service,
		grpc.WithResolvers(rb),
		grpc.WithDefaultServiceConfig(serviceConfig(cfg.policy)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := testgrpc.NewTestServiceClient(conn)

	by := make(map[string]int)
	var failed int
	for i := range cfg.n {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		// WaitForReady: the first calls wait for the first server.
		r, err := c.UnaryCall(rostergrpc.WithHashKey(cctx, fmt.Sprint("user-", i)), &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(out, "call %d: %v\n", i, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		by[r.GetServerId()]++
		if !cfg.quiet {
			fmt.Fprintf(out, "call %d: %s in %v\n", i, r.GetServerId(), time.Since(start).Round(10*time.Microsecond))
		}
		if cfg.interval > 0 {
			t := time.NewTimer(cfg.interval)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
	ids := make([]string, 0, len(by))
	for id := range by {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s %d", id, by[id]))
	}
	fmt.Fprintf(out, "%d calls, %d failed; answered by: %s\n", cfg.n, failed, strings.Join(parts, ", "))
	if failed > 0 {
		return fmt.Errorf("%d of %d calls failed", failed, cfg.n)
	}
	return nil
}
