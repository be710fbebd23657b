package rostergrpc

import (
	"fmt"
	"log/slog"
	"maps"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/attributes"

	"github.com/rosterkit/roster"
)

// instanceKey is the endpoint attribute key of the roster.Instance.
type instanceKey struct{}

// instanceAttr wraps an Instance so that attributes can compare it (maps
// are not comparable with ==).
type instanceAttr struct{ inst roster.Instance }

func (a instanceAttr) Equal(o any) bool {
	b, ok := o.(instanceAttr)
	return ok && a.inst.Service == b.inst.Service && a.inst.ID == b.inst.ID &&
		a.inst.Addr == b.inst.Addr && a.inst.Weight == b.inst.Weight &&
		a.inst.Status == b.inst.Status && maps.Equal(a.inst.Metadata, b.inst.Metadata)
}

// String keeps attribute dumps in gRPC's logs readable.
func (a instanceAttr) String() string {
	return fmt.Sprintf("%s/%s weight=%d", a.inst.Service, a.inst.ID, a.inst.EffectiveWeight())
}

// InstanceFromAttributes returns the instance the resolver attached to an
// endpoint's Attributes, for balancers that want its weight or metadata.
// The metadata map is a copy.
func InstanceFromAttributes(a *attributes.Attributes) (roster.Instance, bool) {
	v, ok := a.Value(instanceKey{}).(instanceAttr)
	if !ok {
		return roster.Instance{}, false
	}
	inst := v.inst
	inst.Metadata = maps.Clone(inst.Metadata)
	return inst, true
}

// telemetryKey is the resolver state attribute key that hands the
// resolver's logger and meter provider to the balancers, which gRPC builds
// by name and so cannot be given options.
type telemetryKey struct{}

type telemetry struct {
	logger *slog.Logger
	mp     metric.MeterProvider
}

func (t *telemetry) Equal(o any) bool { return t == o }

func telemetryFrom(a *attributes.Attributes) *telemetry {
	t, _ := a.Value(telemetryKey{}).(*telemetry)
	return t
}
