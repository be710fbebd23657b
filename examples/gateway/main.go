// Command gateway is the demo's front door: an HTTP gateway that routes
// /svc/<service>/<path> to the registered instances of <service>, with an
// embedded etcd by default, a live status page, Prometheus metrics, and
// optional demo worker processes so that one command shows everything:
//
//	go run ./examples/gateway -workers 3
//
// then open http://127.0.0.1:8080/_roster/ and try
//
//	curl http://127.0.0.1:8080/svc/worker/hello
//	curl -X POST http://127.0.0.1:8080/svc/worker/critical
//	curl http://127.0.0.1:8080/metrics
//
// -workers N starts N processes of this same executable in worker mode
// ("gateway worker -id …", the code of examples/worker), prints their PIDs,
// and stops them gracefully when the gateway stops (or dies: they watch a
// pipe from it). Three gateways started with -name, -peer and -cluster form
// one embedded three-member etcd cluster, each keeping its data in
// ./data/<name> so that it rejoins when started again; -replace brings back a
// member whose data is lost. -etcd uses an existing cluster instead.
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
	"strings"
	"syscall"
	"time"

	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/examples/internal/telemetry"
	"github.com/rosterkit/roster/examples/internal/worker"
)

type flags struct {
	listen    string
	picker    string
	workers   int
	ttl       time.Duration
	namespace string
	pprof     string
	etcd      etcdFlags
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == workerMode {
		os.Exit(worker.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	var f flags
	flag.StringVar(&f.listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	flag.StringVar(&f.picker, "picker", "round-robin", "load balancing: round-robin, weighted, p2c, hash or random")
	flag.IntVar(&f.workers, "workers", 0, "demo worker processes to start")
	flag.DurationVar(&f.ttl, "ttl", 5*time.Second, "lease TTL of the demo workers")
	flag.StringVar(&f.namespace, "namespace", "/roster", "key namespace")
	flag.StringVar(&f.etcd.endpoints, "etcd", "", "use this existing etcd cluster (comma-separated endpoints) instead of the embedded one")
	flag.DurationVar(&f.etcd.timeout, "etcd-timeout", 60*time.Second, "how long to wait for etcd at start (an existing cluster's answer, or the embedded member's majority)")
	flag.StringVar(&f.etcd.listen, "etcd-listen", "127.0.0.1:2379", "client address of the embedded etcd")
	flag.StringVar(&f.etcd.dataDir, "data-dir", "", "data dir of the embedded etcd (default: temporary; ./data/<name> with -cluster)")
	flag.StringVar(&f.etcd.name, "name", "", "embedded member name (for -cluster)")
	flag.StringVar(&f.etcd.peer, "peer", "", "embedded member peer address host:port (for -cluster)")
	flag.StringVar(&f.etcd.cluster, "cluster", "", "initial cluster name=http://host:port,… to bootstrap with other gateways")
	flag.StringVar(&f.etcd.token, "cluster-token", "roster-demo", "initial cluster token (for -cluster)")
	flag.StringVar(&f.pprof, "pprof", "", "serve net/http/pprof on this address (off by default), to profile the gateway under load")
	flag.BoolVar(&f.etcd.replace, "replace", false, "with -cluster: if this member's data dir is empty (its data lost), remove the stale member from the cluster and join afresh")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "gateway: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(f, log); err != nil {
		who := "gateway"
		if f.etcd.name != "" {
			who += " " + f.etcd.name
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(1)
	}
}

func run(f flags, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	who := "gateway"
	if f.etcd.name != "" {
		who += " " + f.etcd.name
	}
	say := func(msg string) { fmt.Printf("%s: %s\n", who, msg) }
	if f.workers < 0 {
		return fmt.Errorf("-workers %d: want 0 or more", f.workers)
	}

	// Listen first: a port in use fails before etcd takes its time.
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if f.pprof != "" {
		stopPprof, err := servePprof(f.pprof)
		if err != nil {
			return err
		}
		defer stopPprof()
		say("profiles at http://" + f.pprof + "/debug/pprof/")
	}

	tm, err := telemetry.New()
	if err != nil {
		return err
	}
	defer tm.Close()
	mp := tm.Provider

	// etcd's own records are many; only its errors are worth a terminal.
	elog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cli, srv, err := f.etcd.connect(ctx, say, elog, mp)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer func() {
		cli.Close()
		if srv != nil {
			srv.Close()
		}
	}()
	say(fmt.Sprintf("etcd serves at %s", strings.Join(cli.Endpoints(), ",")))

	d, err := discovery.New(cli, discovery.WithNamespace(f.namespace),
		discovery.WithLogger(log), discovery.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer d.Close()
	set, err := d.WatchServices()
	if err != nil {
		return err
	}
	defer set.Close()
	tl := newTimeline()
	rt, err := newRouter(d, f.picker, tl, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	m, err := newMetrics(mp, func() *router { return rt })
	if err != nil {
		return err
	}
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	followed := make(chan struct{})
	go func() { defer close(followed); rt.follow(bg, set) }()
	defer func() { stopBG(); <-followed }()
	go rt.sample(bg)
	co := startCoord(cli, f.namespace, tl)
	defer co.Close()

	sup := &supervisor{}
	st := &statusSource{cli: cli, ns: f.namespace, rt: rt, set: set, coord: co, tl: tl, workers: sup,
		info: newGatewayInfo(f.etcd.name, ln.Addr().String(), f.picker), embedded: srv != nil}
	go st.pollHealth(bg)

	hs := &http.Server{Handler: routes(newProxy(rt, m), st, tm.Handler), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Printf("%s serving at http://%s (status page http://%s/_roster/, metrics /metrics, pid %d)\n",
		who, ln.Addr(), ln.Addr(), os.Getpid())

	if f.workers > 0 {
		endpoints := workerEndpoints(ctx, st, cli.Endpoints())
		prefix := "worker-"
		if f.etcd.name != "" {
			prefix = f.etcd.name + "-worker-"
		}
		for i := 1; i <= f.workers; i++ {
			id := fmt.Sprintf("%s%d", prefix, i)
			p, err := sup.start(id, "-etcd", strings.Join(endpoints, ","), "-ttl", f.ttl.String(), "-namespace", f.namespace)
			if err != nil {
				sup.stop(10 * time.Second)
				return fmt.Errorf("start worker %s: %w", id, err)
			}
			say(fmt.Sprintf("started worker %s (pid %d)", id, p.cmd.Process.Pid))
		}
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		sup.stop(10 * time.Second)
		return err
	}
	stop() // a second signal kills the process the default way
	if f.workers > 0 {
		say("stopping the workers (each drains, finishes its requests, deregisters and resigns)")
		sup.stop(15 * time.Second)
	}
	say("stopping")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// workerEndpoints are the client URLs of every member, so that a worker
// outlives the member of its gateway.
func workerEndpoints(ctx context.Context, st *statusSource, fallback []string) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ml, err := st.cli.MemberList(ctx)
	if err != nil {
		return fallback
	}
	var out []string
	for _, m := range ml.Members {
		out = append(out, m.ClientURLs...)
	}
	if len(out) == 0 {
		return fallback
	}
	return out
}

func routes(p *proxy, st *statusSource, metrics http.Handler) http.Handler {
	mux := muxOf(p, st, metrics)
	// Routed requests skip the ServeMux's pattern matching: a clean
	// /svc/<service>/<rest> path goes straight to the proxy.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if service, rest, ok := svcPath(r.URL.Path); ok && r.URL.RawPath == "" {
			p.serve(w, r, service, rest)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func muxOf(p *proxy, st *statusSource, metrics http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/svc/{service}/{rest...}", p)
	mux.HandleFunc("GET /healthz", st.serveHealth)
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /_roster/status", st.serveJSON)
	mux.HandleFunc("GET /_roster/events", st.serveEvents)
	mux.Handle("GET /_roster/", pageHandler())
	mux.Handle("GET /{$}", http.RedirectHandler("/_roster/", http.StatusFound))
	return mux
}
