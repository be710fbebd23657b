package rostergrpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/registry"
)

// RegisterWhileServing lets the application's readiness decide whether
// discovery picks inst: it registers inst with reg when hs reports name
// SERVING, and drains it when name turns NOT_SERVING (or unknown), until ctx
// ends. The application sets name with hs.SetServingStatus; let it be a
// name Health does not set (not inst.Service, not ""), or the two would
// answer each other.
//
// It returns ctx's error once ctx ends, leaving the instance as it is
// (Deregister it, or close reg). It returns earlier with Register's error
// when registering cannot succeed: another owner (registry.ErrDuplicate),
// a closed registrar, an invalid instance. Other failures are retried with
// backoff.
func RegisterWhileServing(ctx context.Context, reg *registry.Registrar, hs *health.Server, name string, inst roster.Instance) error {
	if ctx == nil || reg == nil || hs == nil {
		return fmt.Errorf("rostergrpc: RegisterWhileServing: %w: nil context, Registrar or health.Server", roster.ErrInvalidOption)
	}
	if err := inst.Validate(); err != nil {
		return fmt.Errorf("rostergrpc: RegisterWhileServing: %w", err)
	}
	inst.Status = roster.StatusServing
	ctx, cancel := context.WithCancel(ctx)
	st := &statusStream{ctx: ctx, ch: make(chan healthpb.HealthCheckResponse_ServingStatus, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Watch(&healthpb.HealthCheckRequest{Service: name}, st)
	}()
	defer func() {
		cancel()
		<-done // Watch returns with ctx
	}()

	var (
		b          = backoff.Backoff{Min: roster.DefaultBackoffMin, Max: roster.DefaultBackoffMax}
		serving    bool // what hs says
		registered bool // what was last written
		timer      = time.NewTimer(0)
		retry      <-chan time.Time
	)
	defer timer.Stop()
	<-timer.C
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case s := <-st.ch:
			serving = s == healthpb.HealthCheckResponse_SERVING
		case <-retry:
		}
		retry = nil
		if serving == registered {
			continue
		}
		var err error
		if serving {
			err = reg.Register(ctx, inst)
		} else if err = reg.Drain(ctx, inst.Service, inst.ID); errors.Is(err, registry.ErrNotRegistered) {
			err = nil
		}
		switch {
		case err == nil:
			registered = serving
			b.Reset()
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, registry.ErrDuplicate), errors.Is(err, roster.ErrClosed),
			errors.Is(err, roster.ErrInvalidInstance), errors.Is(err, roster.ErrInvalidName):
			return fmt.Errorf("rostergrpc: RegisterWhileServing: %w", err)
		default:
			timer.Reset(b.Next())
			retry = timer.C
		}
	}
}

// statusStream receives a health server's Watch in process: the latest
// status waits in ch.
type statusStream struct {
	ctx context.Context
	ch  chan healthpb.HealthCheckResponse_ServingStatus
}

func (s *statusStream) Send(r *healthpb.HealthCheckResponse) error {
	select {
	case <-s.ch: // keep the newest only
	default:
	}
	s.ch <- r.GetStatus()
	return nil
}

func (s *statusStream) Context() context.Context     { return s.ctx }
func (s *statusStream) SetHeader(metadata.MD) error  { return nil }
func (s *statusStream) SendHeader(metadata.MD) error { return nil }
func (s *statusStream) SetTrailer(metadata.MD)       {}
func (s *statusStream) SendMsg(any) error            { return nil }
func (s *statusStream) RecvMsg(any) error            { return nil }
