package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
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

// register writes an instance as package registry would, without a lease:
// the examples show the reading side.
func register(cli *clientv3.Client, in roster.Instance) {
	v, err := roster.EncodeInstance(in)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := cli.Put(context.Background(), "/roster/services/"+in.Service+"/"+in.ID, string(v)); err != nil {
		log.Fatal(err)
	}
}

func unregister(cli *clientv3.Client, service, id string) {
	if _, err := cli.Delete(context.Background(), "/roster/services/"+service+"/"+id); err != nil {
		log.Fatal(err)
	}
}

// Follow a service and pick an instance per call.
func Example() {
	cli, stop := connect()
	defer stop()
	register(cli, roster.Instance{Service: "users", ID: "u1", Addr: "10.0.0.1:8080"})
	register(cli, roster.Instance{Service: "users", ID: "u2", Addr: "10.0.0.2:8080"})

	d, err := discovery.New(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	users, err := d.Watch("users")
	if err != nil {
		log.Fatal(err)
	}
	defer users.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := users.WaitSynced(ctx); err != nil {
		log.Fatal(err)
	}

	rr, err := discovery.NewRoundRobin(users)
	if err != nil {
		log.Fatal(err)
	}
	for range 4 {
		p, err := rr.Pick()
		if errors.Is(err, discovery.ErrNoInstances) {
			log.Fatal("no user service is up")
		}
		fmt.Println("call", p.Instance.Addr)
		p.Done(nil) // always; pass the call's error when the instance failed it
	}
	// Output:
	// call 10.0.0.1:8080
	// call 10.0.0.2:8080
	// call 10.0.0.1:8080
	// call 10.0.0.2:8080
}

// React to instances coming and going: the first change is the whole view.
func ExampleCache_Changes() {
	cli, stop := connect()
	defer stop()
	register(cli, roster.Instance{Service: "users", ID: "u1", Addr: "10.0.0.1:8080"})

	d, err := discovery.New(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	users, err := d.Watch("users")
	if err != nil {
		log.Fatal(err)
	}
	defer users.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	changes := users.Changes(ctx)
	show := func() {
		ch := <-changes
		for _, in := range ch.Added {
			fmt.Println("up:", in.ID, in.Addr)
		}
		for _, in := range ch.Removed {
			fmt.Println("down:", in.ID)
		}
		fmt.Println("instances:", ch.Snapshot.Len())
	}
	show()
	register(cli, roster.Instance{Service: "users", ID: "u2", Addr: "10.0.0.2:8080"})
	show()
	unregister(cli, "users", "u1")
	show()
	// Output:
	// up: u1 10.0.0.1:8080
	// instances: 1
	// up: u2 10.0.0.2:8080
	// instances: 2
	// down: u1
	// instances: 1
}

// List the services registered under the namespace, and follow the list.
func ExampleDiscoverer_WatchServices() {
	cli, stop := connect()
	defer stop()
	register(cli, roster.Instance{Service: "users", ID: "u1", Addr: "10.0.0.1:8080"})
	register(cli, roster.Instance{Service: "carts", ID: "c1", Addr: "10.0.0.3:8080"})

	d, err := discovery.New(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names, err := d.Services(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("now:", names)

	set, err := d.WatchServices()
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	changes := set.Changes(ctx)
	fmt.Println("added:", (<-changes).Added)
	unregister(cli, "carts", "c1") // its last instance
	fmt.Println("removed:", (<-changes).Removed)
	// Output:
	// now: [carts users]
	// added: [carts users]
	// removed: [carts]
}

// Route each user to the same instance.
func ExampleConsistentHash() {
	carts := discovery.NewSnapshot("carts",
		roster.Instance{Service: "carts", ID: "c1", Addr: "10.0.0.1:80"},
		roster.Instance{Service: "carts", ID: "c2", Addr: "10.0.0.2:80"},
		roster.Instance{Service: "carts", ID: "c3", Addr: "10.0.0.3:80"},
	)
	byUser, err := discovery.NewConsistentHash(static{carts})
	if err != nil {
		log.Fatal(err)
	}
	first, _ := byUser.Pick("user-42")
	first.Done(nil)
	again, _ := byUser.Pick("user-42")
	again.Done(nil)
	fmt.Println("user-42 stays on one instance:", first.Instance.ID == again.Instance.ID)
	// Output: user-42 stays on one instance: true
}

// static is a Source over a fixed snapshot, e.g. from configuration.
type static struct{ snap *discovery.Snapshot }

func (s static) Snapshot() *discovery.Snapshot { return s.snap }

// Weights from the instances, spread smoothly (nginx's sequence).
func ExampleWeighted() {
	src := static{discovery.NewSnapshot("svc",
		roster.Instance{ID: "a", Addr: "10.0.0.1:80", Weight: 5},
		roster.Instance{ID: "b", Addr: "10.0.0.2:80"},
		roster.Instance{ID: "c", Addr: "10.0.0.3:80"},
	)}
	w, err := discovery.NewWeighted(src)
	if err != nil {
		log.Fatal(err)
	}
	for range 7 {
		p, _ := w.Pick()
		fmt.Print(p.Instance.ID, " ")
		p.Done(nil)
	}
	fmt.Println()
	// Output: a a b a c a a
}

// Eject an instance after three failed calls in a row, for ten seconds.
func ExampleWithEjection() {
	src := static{discovery.NewSnapshot("svc",
		roster.Instance{ID: "a", Addr: "10.0.0.1:80"},
		roster.Instance{ID: "b", Addr: "10.0.0.2:80"},
	)}
	rr, err := discovery.NewRoundRobin(src, discovery.WithEjection(3, 10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	down := errors.New("connection refused")
	for range 6 {
		p, _ := rr.Pick()
		if p.Instance.ID == "a" {
			p.Done(down)
		} else {
			p.Done(nil)
		}
	}
	for range 4 {
		p, _ := rr.Pick()
		fmt.Print(p.Instance.ID, " ")
		p.Done(nil)
	}
	fmt.Println()
	// Output: b b b b
}
