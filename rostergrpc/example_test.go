package rostergrpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
	"github.com/rosterkit/roster/rostergrpc"
)

// connect returns a client of a throwaway etcd member for the examples; an
// application creates its client with clientv3.New and its cluster's
// endpoints.
func connect() (*clientv3.Client, func()) {
	cli, stop, err := etcdtest.Standalone()
	if err != nil {
		log.Fatal(err)
	}
	return cli, stop
}

// serve starts a gRPC server with a health service on a loopback port.
func serve() (addr string, hs *health.Server, stop func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	hs = health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	return lis.Addr().String(), hs, srv.Stop
}

// A client follows a service's registered instances and balances calls
// over them with roster_p2c; the server registers itself.
func ExampleNewResolverBuilder() {
	cli, stop := connect()
	defer stop()
	addr, _, stopServer := serve()
	defer stopServer()

	// The server's side.
	reg, err := registry.New(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Register(ctx, roster.Instance{Service: "echo", ID: "e1", Addr: addr}); err != nil {
		log.Fatal(err)
	}

	// The client's side.
	d, err := discovery.New(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	rb, err := rostergrpc.NewResolverBuilder(d)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient("roster:///echo",
		grpc.WithResolvers(rb),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"roster_p2c":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status)
	// Output: SERVING
}

// Calls with the same key go to the same instance, under roster_hash.
func ExampleWithHashKey() {
	cli, stop := connect()
	defer stop()
	reg, err := registry.New(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range []string{"s1", "s2", "s3"} {
		addr, hs, stopServer := serve()
		defer stopServer()
		hs.SetServingStatus("who", healthpb.HealthCheckResponse_SERVING)
		if id != "s2" {
			hs.SetServingStatus("who", healthpb.HealthCheckResponse_NOT_SERVING) // tells s2 apart
		}
		if err := reg.Register(ctx, roster.Instance{Service: "users", ID: id, Addr: addr}); err != nil {
			log.Fatal(err)
		}
	}
	d, err := discovery.New(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	rb, err := rostergrpc.NewResolverBuilder(d)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient("roster:///users",
		grpc.WithResolvers(rb),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"roster_hash":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	statuses := make(map[healthpb.HealthCheckResponse_ServingStatus]int)
	for range 100 {
		// One user's calls all land on one instance.
		resp, err := hc.Check(rostergrpc.WithHashKey(ctx, "alice"), &healthpb.HealthCheckRequest{Service: "who"}, grpc.WaitForReady(true))
		if err != nil {
			log.Fatal(err)
		}
		statuses[resp.Status]++
	}
	fmt.Println(len(statuses), "instance answered 100 calls")
	// Output: 1 instance answered 100 calls
}

// A server's health service says NOT_SERVING as soon as it drains.
func ExampleNewHealth() {
	cli, stop := connect()
	defer stop()
	addr, hs, stopServer := serve()
	defer stopServer()
	reg, err := registry.New(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	h, err := rostergrpc.NewHealth(reg, hs)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Register(ctx, roster.Instance{Service: "users", ID: "u1", Addr: addr}); err != nil {
		log.Fatal(err)
	}
	h.Sync() // Register's event may still be on its way
	check := func() {
		resp, err := hs.Check(ctx, &healthpb.HealthCheckRequest{Service: "users"})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(resp.Status)
	}
	check()
	if err := h.Drain(ctx, "users", "u1"); err != nil {
		log.Fatal(err)
	}
	check()
	// Output:
	// SERVING
	// NOT_SERVING
}
