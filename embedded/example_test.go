package embedded_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rosterkit/roster/embedded"
)

// A single member on free loopback ports, its data in a temporary directory.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv, err := embedded.Start(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	cli, err := srv.Client()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	if _, err := cli.Put(ctx, "greeting", "hello"); err != nil {
		fmt.Println(err)
		return
	}
	resp, err := cli.Get(ctx, "greeting")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", resp.Kvs[0].Value)
	// Output: hello
}

// Three members in one process, for tests and demos: a write through one
// member is read through another.
func ExampleStartCluster() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	servers, err := embedded.StartCluster(ctx, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()

	a, err := servers[0].Client()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	c, err := servers[2].Client()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	if _, err := a.Put(ctx, "greeting", "hello"); err != nil {
		fmt.Println(err)
		return
	}
	resp, err := c.Get(ctx, "greeting")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(servers[2].Members()), "members")
	fmt.Printf("%s\n", resp.Kvs[0].Value)
	// Output:
	// 3 members
	// hello
}

// A fourth member joins a running cluster through a client of it, and later
// leaves it again.
func ExampleJoin() {
	ctx := context.Background()
	servers, err := embedded.StartCluster(ctx, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range servers {
		defer s.Close()
	}
	cli, err := servers[0].Client()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	joined, err := embedded.Join(ctx, cli, embedded.WithName("d"), embedded.WithDataDir("/var/lib/my-app/etcd-d"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... later, to shrink the cluster again:
	if err := joined.Leave(ctx); err != nil {
		fmt.Println(err)
	}
}

// A backup written to a file, and a new member restored from it.
func ExampleRestore() {
	ctx := context.Background()
	srv, err := embedded.Start(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := os.Create("backup.db")
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := srv.Snapshot(ctx, f); err != nil {
		fmt.Println(err)
		return
	}
	if err := f.Close(); err != nil {
		fmt.Println(err)
		return
	}
	srv.Close()

	// The restored member's name, data dir and peer address are written into
	// its data: start it with the same options.
	opts := []embedded.Option{
		embedded.WithName("restored"),
		embedded.WithDataDir("/var/lib/my-app/etcd-restored"),
		embedded.WithPeerAddr("127.0.0.1:2380"),
	}
	if err := embedded.Restore("backup.db", opts...); err != nil {
		fmt.Println(err)
		return
	}
	restored, err := embedded.Start(ctx, opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer restored.Close()
}

// Client TLS with client certificates, and etcd authentication.
func ExampleWithAuth() {
	ctx := context.Background()
	srv, err := embedded.Start(ctx,
		embedded.WithClientAddr("0.0.0.0:2379"), // allowed: clients are served over TLS
		embedded.WithClientTLS(embedded.TLSFiles{
			CertFile:       "member.pem", // serverAuth and clientAuth usages
			KeyFile:        "member-key.pem",
			TrustedCAFile:  "ca.pem",
			ClientCertAuth: true,
		}),
		embedded.WithAuth(os.Getenv("ETCD_ROOT_PASSWORD")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	cli, err := srv.Client() // TLS and root credentials filled in
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
}

// A member on a small quota that defragments sooner than the defaults would.
func ExampleWithDefragPolicy() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv, err := embedded.Start(ctx,
		embedded.WithQuotaBackendBytes(256<<20),
		embedded.WithDefragPolicy(embedded.DefragPolicy{MinFreeBytes: 8 << 20, MaxInUseRatio: 0.7}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	st := srv.Status()
	fmt.Println(st.Quota>>20, "MiB quota,", st.Defrag.Count, "defragmentations so far")
	// Output: 256 MiB quota, 0 defragmentations so far
}

// Hourly snapshots of a member's data, the last day's kept. Each file
// restores with Restore or "etcdutl snapshot restore".
func ExampleWithSnapshots() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv, err := embedded.Start(ctx,
		embedded.WithDataDir("/var/lib/app/etcd"),
		embedded.WithSnapshots(embedded.SnapshotSchedule{Dir: "/var/backups/app", Interval: time.Hour, Keep: 24}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	// Later: how the last one went.
	if st := srv.Status().Snapshots; st.Err != nil {
		fmt.Println("last snapshot failed:", st.Err)
	}
}
