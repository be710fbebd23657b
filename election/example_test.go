package election_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/election"
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

// Campaign, act as leader with fenced writes, and resign.
func Example() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()

	e, err := election.New(cli, "billing", election.WithTTL(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	l, err := e.Campaign(ctx, "worker-1") // blocks until leading
	if err != nil {
		log.Fatal(err)
	}
	leader, _ := e.Leader(ctx)
	fmt.Println("leader:", leader.Value)

	// A write that etcd accepts only while this leadership holds.
	if _, err := l.Do(ctx, clientv3.OpPut("/billing/last-run", "today")); err != nil {
		log.Fatal(err)
	}

	if err := l.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	<-l.Done()
	fmt.Println("ended:", errors.Is(l.Err(), election.ErrResigned))
	_, err = l.Do(ctx, clientv3.OpPut("/billing/last-run", "again"))
	fmt.Println("fenced write after resigning:", errors.Is(err, election.ErrNotLeader))
	// Output:
	// leader: worker-1
	// ended: true
	// fenced write after resigning: true
}

// Run a singleton job on whichever process leads.
func ExampleElection_Run() {
	ctx, cancel := context.WithCancel(context.Background())
	cli, stop := connect()
	defer stop()

	e, err := election.New(cli, "compactor")
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	err = e.Run(ctx, "worker-1", func(ctx context.Context, l *election.Leadership) error {
		fmt.Println("leading")
		cancel() // stand-in for a shutdown signal; ctx is also cancelled if leadership is lost
		<-ctx.Done()
		return nil
	}, election.OnStoppedLeading(func(err error) { fmt.Println("stopped:", err) }))
	fmt.Println("run:", err)
	// Output:
	// leading
	// stopped: election: resigned
	// run: context canceled
}

// Follow who leads, for example to route requests to the leader.
func ExampleElection_Observe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli, stop := connect()
	defer stop()

	watcher, err := election.New(cli, "router")
	if err != nil {
		log.Fatal(err)
	}
	defer watcher.Close()
	states := watcher.Observe(ctx)
	fmt.Println("elected:", (<-states).Elected())

	candidate, err := election.New(cli, "router")
	if err != nil {
		log.Fatal(err)
	}
	defer candidate.Close()
	l, err := candidate.Campaign(ctx, "10.0.0.7:8080")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leader at:", (<-states).Value)
	l.Resign(ctx)
	fmt.Println("elected:", (<-states).Elected())
	// Output:
	// elected: false
	// leader at: 10.0.0.7:8080
	// elected: false
}
