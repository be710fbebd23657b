package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
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

// Register an instance, and take it out gracefully at shutdown: drain it so
// discovery stops sending new work, then close, which removes it at once.
func Example() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()

	reg, err := registry.New(cli, registry.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	err = reg.Register(ctx, roster.Instance{Service: "users", ID: "pod-7", Addr: "10.0.0.7:8080",
		Metadata: map[string]string{"zone": "eu-1"}})
	if err != nil {
		log.Fatal(err)
	}
	resp, _ := cli.Get(ctx, "/roster/services/users/pod-7")
	fmt.Printf("%s\n", resp.Kvs[0].Value)

	// Shutting down.
	if err := reg.Drain(ctx, "users", "pod-7"); err != nil {
		log.Fatal(err)
	}
	resp, _ = cli.Get(ctx, "/roster/services/users/pod-7")
	fmt.Printf("%s\n", resp.Kvs[0].Value)
	// ... finish in-flight requests ...
	if err := reg.Close(ctx); err != nil {
		log.Print(err) // the lease then expires after its TTL
	}
	resp, _ = cli.Get(ctx, "/roster/services/users/pod-7")
	fmt.Println("after Close:", resp.Count, "keys")
	// Output:
	// {"v":1,"addr":"10.0.0.7:8080","metadata":{"zone":"eu-1"}}
	// {"v":1,"addr":"10.0.0.7:8080","status":"draining","metadata":{"zone":"eu-1"}}
	// after Close: 0 keys
}

// A second process started with the same service and ID is refused rather
// than silently taking over the first one's registration.
func ExampleRegistrar_Register_duplicate() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()

	first, _ := registry.New(cli)
	defer first.Close(ctx)
	second, _ := registry.New(cli)
	defer second.Close(ctx)

	inst := roster.Instance{Service: "users", ID: "pod-7", Addr: "10.0.0.7:8080"}
	fmt.Println(first.Register(ctx, inst))
	err := second.Register(ctx, inst)
	fmt.Println(errors.Is(err, registry.ErrDuplicate))
	// Output:
	// <nil>
	// true
}

// Serve the registrar's state from a health endpoint, and log what happens
// to it.
func ExampleRegistrar_Status() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()
	reg, _ := registry.New(cli)
	defer reg.Close(ctx)

	go func() {
		for ev := range reg.Events() { // ends when reg is closed
			log.Printf("registry: %v", ev)
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if st := reg.Status(); !st.Healthy {
			http.Error(w, fmt.Sprintf("unhealthy since %v: %v", st.Since, st.Err), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	_ = reg.Register(ctx, roster.Instance{Service: "users", ID: "pod-7", Addr: "10.0.0.7:8080"})
	st := reg.Status()
	fmt.Println(st.Healthy, st.Instances, st.Lease != 0)
	// Output:
	// true 1 true
}
