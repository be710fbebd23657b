package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
)

var cli *clientv3.Client // your etcd client

func call(addr string) error { return nil }

// Follow a service and pick an instance per call.
func Example() {
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

	picker := discovery.NewP2C(users)
	p, err := picker.Pick()
	if errors.Is(err, discovery.ErrNoInstances) {
		log.Fatal("no user service is up")
	}
	err = call(p.Instance.Addr)
	p.Done(err) // always; failures count towards ejection
}

// Connect gRPC to every registered instance of a service.
func ExampleNewResolverBuilder() {
	d, err := discovery.New(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	conn, err := grpc.NewClient("roster:///users?zone=eu-1",
		grpc.WithResolvers(discovery.NewResolverBuilder(d)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	// Use conn with any generated client.
}

// React to instances coming and going.
func ExampleCache_Subscribe() {
	d, _ := discovery.New(cli)
	defer d.Close()
	users, _ := d.Watch("users")
	defer users.Close()

	sub := users.Subscribe()
	defer sub.Close()
	for {
		ch, err := sub.Next(context.Background())
		if err != nil {
			return
		}
		for _, in := range ch.Added {
			fmt.Println("up:", in.ID, in.Addr)
		}
		for _, in := range ch.Removed {
			fmt.Println("down:", in.ID)
		}
		fmt.Println("as of revision", ch.Snapshot.Revision)
	}
}

// Route each user to the same instance.
func ExampleConsistentHash() {
	d, _ := discovery.New(cli)
	defer d.Close()
	carts, _ := d.Watch("carts")
	defer carts.Close()

	byUser := discovery.NewConsistentHash(carts,
		discovery.WithFilter(discovery.MatchMetadata(map[string]string{"version": "2"})))
	p, err := byUser.Pick("user-42")
	if err != nil {
		return
	}
	defer p.Done(nil)
	fmt.Println("user-42 lives on", p.Instance.Addr)
}

// static is a Source over a fixed list, e.g. for tests or configuration.
type static struct{ snap *discovery.Snapshot }

func (s static) Snapshot() *discovery.Snapshot { return s.snap }

// Weights from the instances, spread smoothly (nginx's sequence).
func ExampleWeighted() {
	src := static{&discovery.Snapshot{Instances: []roster.Instance{
		{ID: "a", Addr: "10.0.0.1:80", Weight: 5},
		{ID: "b", Addr: "10.0.0.2:80"},
		{ID: "c", Addr: "10.0.0.3:80"},
	}}}
	w := discovery.NewWeighted(src)
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
	src := static{&discovery.Snapshot{Instances: []roster.Instance{
		{ID: "a", Addr: "10.0.0.1:80"},
		{ID: "b", Addr: "10.0.0.2:80"},
	}}}
	rr := discovery.NewRoundRobin(src, discovery.WithEjection(3, 10*time.Second))
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
