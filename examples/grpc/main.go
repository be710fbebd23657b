// Command grpc is roster's gRPC tour: "grpc server" runs a gRPC server that
// registers itself with roster and keeps its health service in step with
// its registration; "grpc client" calls the service through roster:///echo
// with the roster_p2c balancer and gRPC's retries, and says who answered.
//
//	go run ./examples/grpc server -etcd 127.0.0.1:2379 -id s1
//	go run ./examples/grpc server -etcd 127.0.0.1:2379 -id s2 -delay 20ms
//	go run ./examples/grpc client -etcd 127.0.0.1:2379 -n 100
//
// The service is gRPC's interop TestService (grpc.testing.TestService),
// whose UnaryCall answers with the server's ID, so that the tour needs no
// code generation. SIGINT or SIGTERM make a server drain (NOT_SERVING,
// no new calls), finish its calls in flight, deregister and exit 0.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs one subcommand and returns the exit code: 0 when done, 1 on
// failure, 2 for bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: grpc server|client [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "server":
		var cfg serverConfig
		if cfg, err = parseServer(args[1:], stderr); err == nil {
			err = serve(ctx, cfg, stdout)
		}
	case "client":
		var cfg clientConfig
		if cfg, err = parseClient(args[1:], stderr); err == nil {
			err = callAll(ctx, cfg, stdout)
		}
	default:
		fmt.Fprintf(stderr, "grpc: unknown subcommand %q; want server or client\n", args[0])
		return 2
	}
	switch {
	case err == errUsage:
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "grpc %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
