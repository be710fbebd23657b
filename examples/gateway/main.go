// Command gateway is the demo's front door: an HTTP gateway that routes
// /svc/<service>/<path> to the registered instances of <service>, with an
// embedded etcd by default, live status pages, and optional in-process demo
// workers so that one command shows everything:
//
//	go run ./examples/gateway -workers 3
//
// then open http://127.0.0.1:8080/_roster/ and try
//
//	curl http://127.0.0.1:8080/svc/worker/hello
//	curl -X POST http://127.0.0.1:8080/svc/worker/critical
//
// Three gateways started with -name, -peer and -cluster form one embedded
// three-member etcd cluster; -etcd uses an existing cluster instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/examples/internal/worker"
)

type flags struct {
	listen    string
	picker    string
	workers   int
	ttl       time.Duration
	namespace string
	etcd      etcdFlags
}

func main() {
	var f flags
	flag.StringVar(&f.listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	flag.StringVar(&f.picker, "picker", "round-robin", "load balancing: round-robin, weighted, p2c, hash or random")
	flag.IntVar(&f.workers, "workers", 0, "demo workers to start in this process")
	flag.DurationVar(&f.ttl, "ttl", 5*time.Second, "lease TTL of the demo workers")
	flag.StringVar(&f.namespace, "namespace", "/roster", "key namespace")
	flag.StringVar(&f.etcd.endpoints, "etcd", "", "use this existing etcd cluster (comma-separated endpoints) instead of the embedded one")
	flag.StringVar(&f.etcd.listen, "etcd-listen", "127.0.0.1:2379", "client address of the embedded etcd")
	flag.StringVar(&f.etcd.dataDir, "data-dir", "", "data dir of the embedded etcd (default: temporary)")
	flag.StringVar(&f.etcd.name, "name", "", "embedded member name (for -cluster)")
	flag.StringVar(&f.etcd.peer, "peer", "", "embedded member peer address host:port (for -cluster)")
	flag.StringVar(&f.etcd.cluster, "cluster", "", "initial cluster name=http://host:port,… to bootstrap with other gateways")
	flag.StringVar(&f.etcd.token, "cluster-token", "roster-demo", "initial cluster token (for -cluster)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(f, log); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(f flags, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cli, srv, err := f.etcd.connect(startCtx)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer func() {
		cli.Close()
		if srv != nil {
			srv.Close()
		}
	}()

	d, err := discovery.New(cli, discovery.WithNamespace(f.namespace))
	if err != nil {
		return err
	}
	defer d.Close()
	rt, err := newRouter(d, f.picker)
	if err != nil {
		return err
	}
	defer rt.Close()
	el := newElections(cli, f.namespace)
	defer el.Close()

	var workers []*worker.Worker
	defer func() { stopWorkers(workers, log) }()
	for i := 1; i <= f.workers; i++ {
		w, err := worker.Start(startCtx, worker.Config{
			Client: cli, Namespace: f.namespace, ID: fmt.Sprintf("worker-%d", i),
			TTL: f.ttl, Log: log.With("worker", i),
		})
		if err != nil {
			return fmt.Errorf("demo worker %d: %w", i, err)
		}
		workers = append(workers, w)
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	st := &statusSource{cli: cli, rt: rt, elections: el.states}
	hs := &http.Server{Handler: routes(rt, st), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	follow := followServices(ctx, cli, f.namespace, rt)
	defer follow()

	fmt.Printf("gateway serving at http://%s (status page http://%s/_roster/)\n", ln.Addr(), ln.Addr())
	fmt.Printf("etcd endpoints: %v\n", cli.Endpoints())

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	stop()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func routes(rt *router, st *statusSource) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/svc/{service}/{rest...}", newProxy(rt))
	mux.HandleFunc("GET /healthz", st.serveHealth)
	mux.HandleFunc("GET /_roster/status", st.serveJSON)
	mux.HandleFunc("GET /_roster/events", st.serveEvents)
	mux.HandleFunc("GET /_roster/{$}", st.servePage)
	mux.Handle("GET /{$}", http.RedirectHandler("/_roster/", http.StatusFound))
	return mux
}

func stopWorkers(ws []*worker.Worker, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, w := range ws {
		if err := w.Shutdown(ctx); err != nil {
			log.Warn("worker shutdown", "id", w.ID(), "err", err)
		}
	}
}
