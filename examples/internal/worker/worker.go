// Package worker is the demo service behind examples/worker and the
// gateway's -workers flag: an HTTP service that registers itself, takes part
// in an election and runs a singleton job while it leads, and serves a
// critical section under a distributed lock with a fenced write.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/lock"
	"github.com/rosterkit/roster/registry"
)

// Config says what a worker is and where it registers.
type Config struct {
	Client    *clientv3.Client
	Namespace string        // default "/roster"
	Service   string        // default "worker"; also the election and lock name
	ID        string        // default host-pid
	Listen    string        // default 127.0.0.1:0
	TTL       time.Duration // lease TTL for registration, candidacy and lock; default 5 s
	Log       *slog.Logger  // default: discard
	// ReportEvery is how often the leader writes its report; default 1 s.
	ReportEvery time.Duration
	// DrainGrace is how long a draining worker keeps accepting connections,
	// so that gateways see the drain before the listener closes; default 200 ms.
	DrainGrace time.Duration
}

func (c *Config) defaults() {
	if c.Namespace == "" {
		c.Namespace = "/roster"
	}
	if c.Service == "" {
		c.Service = "worker"
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.TTL == 0 {
		c.TTL = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.ReportEvery == 0 {
		c.ReportEvery = time.Second
	}
	if c.DrainGrace == 0 {
		c.DrainGrace = 200 * time.Millisecond
	}
}

// Worker is a running demo service.
type Worker struct {
	cfg     Config
	ln      net.Listener
	srv     *http.Server
	reg     *registry.Registrar
	elec    *election.Election
	mu      *lock.Mutex
	leading atomic.Bool

	stopRun context.CancelFunc
	runDone chan struct{}
	served  chan error
}

// Start listens, registers the worker and enters the election. On failure
// it undoes what it did and returns the SDK's error.
func Start(ctx context.Context, cfg Config) (*Worker, error) {
	cfg.defaults()
	w := &Worker{cfg: cfg, runDone: make(chan struct{}), served: make(chan error, 1)}
	// undo runs, in reverse, what Start set up, should a later step fail.
	var undo []func()
	fail := func(err error) (*Worker, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}
	reg, err := registry.New(cfg.Client, registry.WithTTL(cfg.TTL), registry.WithNamespace(cfg.Namespace))
	if err != nil {
		return fail(err)
	}
	w.reg = reg
	undo = append(undo, func() { reg.Close() })
	elec, err := election.New(cfg.Client, cfg.Service, election.WithTTL(cfg.TTL), election.WithNamespace(cfg.Namespace))
	if err != nil {
		return fail(err)
	}
	w.elec = elec
	undo = append(undo, func() { elec.Close() })
	mu, err := lock.NewMutex(cfg.Client, cfg.Service, lock.WithTTL(cfg.TTL), lock.WithNamespace(cfg.Namespace))
	if err != nil {
		return fail(err)
	}
	w.mu = mu
	undo = append(undo, func() { mu.Close() })
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fail(err)
	}
	w.ln = ln
	w.srv = &http.Server{Handler: w.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { w.served <- w.srv.Serve(ln) }()
	undo = append(undo, func() { w.srv.Close(); <-w.served })

	inst := roster.Instance{
		Service:  cfg.Service,
		ID:       cfg.ID,
		Addr:     ln.Addr().String(),
		Metadata: map[string]string{"version": "1", "pid": strconv.Itoa(os.Getpid())},
	}
	if err := reg.Register(ctx, inst); err != nil {
		return fail(fmt.Errorf("register %s/%s: %w", cfg.Service, cfg.ID, err))
	}
	runCtx, stop := context.WithCancel(context.Background())
	w.stopRun = stop
	go w.campaign(runCtx)
	cfg.Log.Info("worker started", "service", cfg.Service, "id", cfg.ID, "addr", inst.Addr)
	return w, nil
}

// Addr is where the worker serves HTTP.
func (w *Worker) Addr() string { return w.ln.Addr().String() }

// ID is the worker's instance ID.
func (w *Worker) ID() string { return w.cfg.ID }

// Leading reports whether the worker currently leads its service's election.
func (w *Worker) Leading() bool { return w.leading.Load() }

// campaign keeps the worker in the election until stopped; while it leads,
// it runs the singleton job.
func (w *Worker) campaign(ctx context.Context) {
	defer close(w.runDone)
	err := w.elec.Run(ctx, w.cfg.ID, w.lead,
		election.OnStartedLeading(func(l *election.Leadership) {
			w.cfg.Log.Info("leading", "election", w.elec.Prefix(), "token", l.Token())
		}),
		election.OnStoppedLeading(func(err error) {
			w.cfg.Log.Info("stopped leading", "reason", err)
		}))
	if err != nil && !errors.Is(err, context.Canceled) {
		w.cfg.Log.Error("election ended", "err", err)
	}
}

// Shutdown leaves gracefully: mark draining so gateways stop sending new
// work, finish in-flight requests, deregister, resign, release everything.
func (w *Worker) Shutdown(ctx context.Context) error {
	var errs []error
	if err := w.reg.Drain(ctx, w.cfg.Service, w.cfg.ID); err != nil {
		errs = append(errs, fmt.Errorf("drain: %w", err))
	}
	grace := time.NewTimer(w.cfg.DrainGrace)
	select {
	case <-grace.C:
	case <-ctx.Done():
		grace.Stop()
	}
	if err := w.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("finish in-flight requests: %w", err))
	}
	if err := <-w.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	if err := w.reg.Deregister(ctx, w.cfg.Service, w.cfg.ID); err != nil {
		errs = append(errs, fmt.Errorf("deregister: %w", err))
	}
	w.stopRun() // Run resigns before it returns
	<-w.runDone
	errs = append(errs, w.elec.Close(), w.mu.Close(), w.reg.Shutdown(ctx))
	return errors.Join(errs...)
}
