package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"

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

	reg, err := registry.New(cli) // roster.DefaultTTL: a crashed process is gone within 10 s
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
	if err := reg.Shutdown(ctx); err != nil {
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
	defer first.Close()
	second, _ := registry.New(cli)
	defer second.Close()

	inst := roster.Instance{Service: "users", ID: "pod-7", Addr: "10.0.0.7:8080"}
	fmt.Println(first.Register(ctx, inst))
	err := second.Register(ctx, inst)
	fmt.Println(errors.Is(err, registry.ErrDuplicate))
	// Output:
	// <nil>
	// true
}

// Serve the registrar's state from a health endpoint.
func ExampleRegistrar_Status() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()
	reg, _ := registry.New(cli)
	defer reg.Close()

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

// Follow what happens to the registrar: here its lease is revoked by
// someone else, and it restores its instance under a new one.
func ExampleRegistrar_Events() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()
	reg, _ := registry.New(cli)
	defer reg.Close()

	events := reg.Events(ctx) // a channel of its own; closed by Close
	_ = reg.Register(ctx, roster.Instance{Service: "users", ID: "pod-7", Addr: "10.0.0.7:8080"})
	_, _ = cli.Revoke(ctx, reg.Status().Lease)
	for ev := range events {
		fmt.Println(ev.Kind, ev.Service, errors.Is(ev.Err, roster.ErrLost))
		if ev.Kind == registry.EventRestored {
			break
		}
	}
	// Output:
	// registered users false
	// lost  true
	// restored  false
}

// An operator takes an instance out of rotation from outside, as a CLI
// does: its registrar writes it draining, then tells its application, which
// finishes its work and leaves. The request stays until CancelDrain, even
// across restarts.
func ExampleRequestDrain() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()
	reg, _ := registry.New(cli)
	defer reg.Close()
	events := reg.Events(ctx)
	_ = reg.Register(ctx, roster.Instance{Service: "users", ID: "pod-7", Addr: "10.0.0.7:8080"})

	// The operator, from anywhere:
	if err := registry.RequestDrain(ctx, cli, "users", "pod-7", "kernel upgrade"); err != nil {
		log.Fatal(err)
	}

	// The application:
	for ev := range events {
		if ev.Kind == registry.EventDrainRequested {
			fmt.Println(ev.Service, ev.ID, ev.Reason)
			break // ... finish in-flight work, then reg.Shutdown(ctx)
		}
	}
	resp, _ := cli.Get(ctx, "/roster/services/users/pod-7")
	fmt.Printf("%s\n", resp.Kvs[0].Value)
	// Output:
	// users pod-7 kernel upgrade
	// {"v":1,"addr":"10.0.0.7:8080","status":"draining"}
}
