package session_test

import (
	"context"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/session"
)

// A key that lives as long as the process keeps its session, and goes at
// once when the session is closed.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, stop := connect()
	defer stop()

	s, err := session.New(ctx, cli, session.WithTTL(5*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := cli.Put(ctx, "/app/alive", "yes", clientv3.WithLease(s.Lease())); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("lost before the server's expiry:", time.Until(s.Deadline()) < s.TTL())

	s.Close() // revokes the lease: the key goes now, not after the TTL
	resp, err := cli.Get(ctx, "/app/alive")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("keys left:", len(resp.Kvs), "because", s.Err())
	// Output:
	// lost before the server's expiry: true
	// keys left: 0 because session: roster: closed
}

// Elections and locks of one process can share a single lease.
func ExampleManager() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, stop := connect()
	defer stop()

	m, err := session.NewManager(cli)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	a, _ := m.Session(ctx)
	b, _ := m.Session(ctx)
	fmt.Println("one lease:", a.Lease() == b.Lease())
	// Output:
	// one lease: true
}

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
