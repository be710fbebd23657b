package rostergrpc

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/obs"
	"github.com/rosterkit/roster/registry"
)

// Health keeps a gRPC health server in step with a Registrar, so that
// health checks (a client's healthCheckConfig, a Kubernetes probe) see what
// discovery sees: each registered service's name is SERVING while one of
// its instances is serving and NOT_SERVING once they all drain or go, and
// the server as a whole ("") likewise over every instance.
//
// It follows the registrar's events (registered, restored, an operator's
// drain requested or cancelled). The application's own changes make no
// event: drain through Health.Drain, or call Sync after Update or
// Deregister. Once the registrar is closed everything it held is
// NOT_SERVING.
type Health struct {
	reg    *registry.Registrar
	hs     *health.Server
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex
	set    map[string]healthpb.HealthCheckResponse_ServingStatus // what Health set
	closed bool
}

// NewHealth starts keeping hs in step with reg, until Close. Nil arguments
// are an error wrapping roster.ErrInvalidOption.
func NewHealth(reg *registry.Registrar, hs *health.Server, opts ...Option) (*Health, error) {
	if reg == nil || hs == nil {
		return nil, fmt.Errorf("rostergrpc: NewHealth: %w: nil Registrar or health.Server", roster.ErrInvalidOption)
	}
	cfg, err := newConfig("NewHealth", opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Health{reg: reg, hs: hs, log: obs.Logger(cfg.logger), cancel: cancel,
		set: make(map[string]healthpb.HealthCheckResponse_ServingStatus)}
	events := reg.Events(ctx) // before the first Sync, so that nothing falls between
	h.Sync()
	h.wg.Go(func() {
		for range events {
			h.Sync()
		}
		if ctx.Err() == nil {
			h.Sync() // the registrar was closed: its instances are gone
		}
	})
	return h, nil
}

// Drain drains an instance with the registrar's Drain and then updates the
// health statuses, so that health checks say NOT_SERVING as discovery stops
// picking the instance.
func (h *Health) Drain(ctx context.Context, service, id string) error {
	if h == nil {
		return fmt.Errorf("rostergrpc: Drain: %w: nil Health", roster.ErrInvalidOption)
	}
	err := h.reg.Drain(ctx, service, id)
	h.Sync()
	return err
}

// Sync sets the health statuses from the registrar's instances now.
func (h *Health) Sync() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	const serving, notServing = healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	want := make(map[string]healthpb.HealthCheckResponse_ServingStatus)
	for _, in := range h.reg.Instances() {
		if in.Serving() {
			want[in.Service] = serving
			want[""] = serving
		} else if _, ok := want[in.Service]; !ok {
			want[in.Service] = notServing
		}
		if _, ok := want[""]; !ok {
			want[""] = notServing
		}
	}
	// Names Health set before and no instance holds now are gone.
	for name := range h.set {
		if _, ok := want[name]; !ok {
			want[name] = notServing
		}
	}
	for name, st := range want {
		if h.set[name] == st {
			continue
		}
		h.set[name] = st
		h.hs.SetServingStatus(name, st)
		h.log.Info("rostergrpc: health status changed", obs.KeyService, name, obs.KeyStatus, st.String())
	}
}

// Close stops following the registrar, leaving the statuses as they are.
// It is idempotent and returns nil.
func (h *Health) Close() error {
	if h == nil {
		return nil
	}
	h.once.Do(func() {
		h.cancel()
		h.wg.Wait()
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
	})
	return nil
}
