// Package worker is the demo service behind examples/worker and the
// gateway's -workers flag: an HTTP service that registers itself, takes part
// in an election and runs a singleton job while it leads, and serves a
// critical section under a distributed lock with a fenced write.
//
// An operator's drain (roster drain, registry.RequestDrain) takes the worker
// out of rotation without stopping it: the registrar writes it draining, so
// gateways send it no new requests, and the worker, told by
// EventDrainRequested, leaves the election, so that the singleton job moves
// to a serving worker. It keeps answering what still reaches it (requests
// sent before the gateways saw the drain), saying it is draining, and stays
// out of the election until the drain is cancelled (EventUndrainRequested).
// Stopping it (SIGTERM) is still the way to take it down.
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
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/lock"
	"github.com/rosterkit/roster/registry"
	"github.com/rosterkit/roster/session"
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
	// Say, if set, is told in plain words what the worker does while it
	// starts, drains and stops.
	Say func(msg string)
	// MeterProvider receives the worker's request metrics and the SDK's
	// (registry, session, election, lock); nil means OpenTelemetry's global.
	MeterProvider metric.MeterProvider
	// Metrics, if set, is served at GET /metrics.
	Metrics http.Handler
	// ReportEvery is how often the leader writes its report; default 1 s.
	ReportEvery time.Duration
	// DrainGrace is how long a draining worker keeps accepting connections,
	// so that gateways see the drain before the listener closes; default 200 ms.
	DrainGrace time.Duration
}

func (c *Config) defaults() {
	if c.Namespace == "" {
		c.Namespace = roster.DefaultNamespace
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
	if c.Say == nil {
		c.Say = func(string) {}
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
	sm      *session.Manager
	reg     *registry.Registrar
	elec    *election.Election
	mu      *lock.Mutex
	leading atomic.Bool
	m       *instruments

	drainMu sync.Mutex
	drained bool
	reason  string
	changed chan struct{} // closed and replaced when the drain state changes

	stop    context.CancelFunc // ends the campaign and the events loop
	runDone chan struct{}
	evDone  chan struct{}
	served  chan error
}

// Start listens, registers the worker and enters the election. On failure
// it undoes what it did and returns the SDK's error.
func Start(ctx context.Context, cfg Config) (*Worker, error) {
	cfg.defaults()
	w := &Worker{cfg: cfg, changed: make(chan struct{}), runDone: make(chan struct{}),
		evDone: make(chan struct{}), served: make(chan error, 1)}
	// undo runs, in reverse, what Start set up, should a later step fail.
	var undo []func()
	fail := func(err error) (*Worker, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}
	mp := cfg.MeterProvider
	m, err := newInstruments(mp)
	if err != nil {
		return fail(err)
	}
	w.m = m
	reg, err := registry.New(cfg.Client, registry.WithTTL(cfg.TTL), registry.WithNamespace(cfg.Namespace),
		registry.WithLogger(cfg.Log), registry.WithMeterProvider(mp))
	if err != nil {
		return fail(err)
	}
	w.reg = reg
	undo = append(undo, func() { reg.Close() })
	// The election and the lock share one lease, so a status page can tell
	// which candidate holds or waits for the lock.
	sm, err := session.NewManager(cfg.Client, session.WithTTL(cfg.TTL), session.WithLogger(cfg.Log),
		session.WithMeterProvider(mp))
	if err != nil {
		return fail(err)
	}
	w.sm = sm
	undo = append(undo, func() { sm.Close() })
	elec, err := election.New(cfg.Client, cfg.Service, election.WithSessionManager(sm),
		election.WithNamespace(cfg.Namespace), election.WithLogger(cfg.Log), election.WithMeterProvider(mp))
	if err != nil {
		return fail(err)
	}
	w.elec = elec
	undo = append(undo, func() { elec.Close() })
	mu, err := lock.NewMutex(cfg.Client, cfg.Service, lock.WithSessionManager(sm),
		lock.WithNamespace(cfg.Namespace), lock.WithLogger(cfg.Log), lock.WithMeterProvider(mp))
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

	runCtx, stop := context.WithCancel(context.Background())
	w.stop = stop
	// Subscribe before registering: a drain requested before this start is
	// told with the first write.
	events := reg.Events(runCtx)
	go w.follow(events)
	undo = append(undo, func() { stop(); <-w.evDone })

	inst := roster.Instance{
		Service:  cfg.Service,
		ID:       cfg.ID,
		Addr:     ln.Addr().String(),
		Metadata: map[string]string{"version": "1", "pid": strconv.Itoa(os.Getpid())},
	}
	cfg.Say(fmt.Sprintf("registering %s/%s at %s (lease TTL %v)", cfg.Service, cfg.ID, inst.Addr, cfg.TTL))
	if err := reg.Register(ctx, inst); err != nil {
		return fail(fmt.Errorf("register %s/%s: %w", cfg.Service, cfg.ID, err))
	}
	w.drainedAtStart(ctx)
	cfg.Say(fmt.Sprintf("campaigning in election %q", elec.Prefix()))
	go w.campaign(runCtx)
	cfg.Log.Info("worker started", "service", cfg.Service, "id", cfg.ID, "addr", inst.Addr)
	return w, nil
}

// drainedAtStart takes over a drain an operator requested before this
// start: the registrar wrote the instance draining from its first write.
func (w *Worker) drainedAtStart(ctx context.Context) {
	for _, in := range w.reg.Instances() {
		if in.ID != w.cfg.ID || in.Serving() {
			continue
		}
		reason := "requested by an operator"
		if reqs, err := registry.DrainRequests(ctx, w.cfg.Client, registry.WithNamespace(w.cfg.Namespace)); err == nil {
			for _, r := range reqs {
				if r.Service == w.cfg.Service && r.ID == w.cfg.ID && r.Reason != "" {
					reason = r.Reason
				}
			}
		}
		w.setDrained(true, reason)
	}
}

// Addr is where the worker serves HTTP.
func (w *Worker) Addr() string { return w.ln.Addr().String() }

// ID is the worker's instance ID.
func (w *Worker) ID() string { return w.cfg.ID }

// Leading reports whether the worker currently leads its service's election.
func (w *Worker) Leading() bool { return w.leading.Load() }

// Drained reports whether an operator asked for the worker to be drained,
// and why.
func (w *Worker) Drained() (bool, string) {
	w.drainMu.Lock()
	defer w.drainMu.Unlock()
	return w.drained, w.reason
}

func (w *Worker) drainState() (bool, <-chan struct{}) {
	w.drainMu.Lock()
	defer w.drainMu.Unlock()
	return w.drained, w.changed
}

func (w *Worker) setDrained(on bool, reason string) {
	w.drainMu.Lock()
	defer w.drainMu.Unlock()
	if w.drained == on && w.reason == reason {
		return
	}
	w.drained, w.reason = on, reason
	close(w.changed)
	w.changed = make(chan struct{})
}

// follow applies what the registrar tells: an operator's drain and its
// cancellation, and lease losses and restores, which it only logs.
func (w *Worker) follow(events <-chan registry.Event) {
	defer close(w.evDone)
	for ev := range events {
		switch ev.Kind {
		case registry.EventDrainRequested:
			if ev.ID != w.cfg.ID {
				continue
			}
			reason := ev.Reason
			if reason == "" {
				reason = "requested by an operator"
			}
			w.cfg.Say(fmt.Sprintf("drain requested (%s): out of rotation, leaving the election", reason))
			w.setDrained(true, reason)
		case registry.EventUndrainRequested:
			if ev.ID != w.cfg.ID {
				continue
			}
			w.cfg.Say("drain cancelled: serving again, back in the election")
			w.setDrained(false, "")
		case registry.EventLost:
			w.cfg.Say(fmt.Sprintf("registration lost (%v); restoring it", ev.Err))
		case registry.EventRestored:
			w.cfg.Say("registration restored")
		}
	}
}

// campaign keeps the worker in the election until stopped, except while it
// is drained; while it leads, it runs the singleton job.
func (w *Worker) campaign(ctx context.Context) {
	defer close(w.runDone)
	for ctx.Err() == nil {
		drained, changed := w.drainState()
		if drained {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				continue
			}
		}
		runCtx, cancel := context.WithCancel(ctx)
		go w.cancelOnDrain(runCtx, cancel, changed)
		err := w.elec.Run(runCtx, w.cfg.ID, w.lead,
			election.OnStartedLeading(func(l *election.Leadership) {
				w.cfg.Say(fmt.Sprintf("leading %q (fencing token %d)", w.elec.Prefix(), l.Token()))
				w.cfg.Log.Info("leading", "election", w.elec.Prefix(), "token", l.Token())
			}),
			election.OnStoppedLeading(func(err error) {
				w.cfg.Say(fmt.Sprintf("stopped leading: %v", err))
				w.cfg.Log.Info("stopped leading", "reason", err)
			}))
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			w.cfg.Log.Error("election ended", "err", err)
			select { // the job failed: campaign again after a pause
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// cancelOnDrain cancels a campaign once the worker is drained.
func (w *Worker) cancelOnDrain(ctx context.Context, cancel context.CancelFunc, changed <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		var drained bool
		drained, changed = w.drainState()
		if drained {
			cancel()
			return
		}
	}
}

// Shutdown leaves gracefully: mark draining so gateways stop sending new
// work, finish in-flight requests, deregister, resign, release everything.
func (w *Worker) Shutdown(ctx context.Context) error {
	var errs []error
	w.cfg.Say("draining: gateways stop sending new requests")
	if err := w.reg.Drain(ctx, w.cfg.Service, w.cfg.ID); err != nil {
		errs = append(errs, fmt.Errorf("drain: %w", err))
	}
	grace := time.NewTimer(w.cfg.DrainGrace)
	select {
	case <-grace.C:
	case <-ctx.Done():
		grace.Stop()
	}
	w.cfg.Say("finishing in-flight requests")
	if err := w.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("finish in-flight requests: %w", err))
	}
	if err := <-w.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	w.cfg.Say("deregistering and resigning")
	if err := w.reg.Deregister(ctx, w.cfg.Service, w.cfg.ID); err != nil {
		errs = append(errs, fmt.Errorf("deregister: %w", err))
	}
	w.stop() // Run resigns before it returns
	<-w.runDone
	errs = append(errs, w.elec.Shutdown(ctx), w.mu.Shutdown(ctx), w.sm.Shutdown(ctx), w.reg.Shutdown(ctx))
	<-w.evDone
	return errors.Join(errs...)
}
