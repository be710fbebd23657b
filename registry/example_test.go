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
	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/registry"
)

// startEtcd starts an in-process etcd for the examples; a real application
// connects to its cluster instead.
func startEtcd(ctx context.Context) (*embedded.Server, *clientv3.Client) {
	srv, err := embedded.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	cli, err := srv.Client()
	if err != nil {
		log.Fatal(err)
	}
	return srv, cli
}

// Register an instance, and take it out gracefully at shutdown: drain it so
// discovery stops sending new work, then close, which removes it at once.
func Example() {
	ctx := context.Background()
	srv, cli := startEtcd(ctx)
	defer srv.Close()
	defer cli.Close()

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
	srv, cli := startEtcd(ctx)
	defer srv.Close()
	defer cli.Close()

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
	srv, cli := startEtcd(ctx)
	defer srv.Close()
	defer cli.Close()
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
