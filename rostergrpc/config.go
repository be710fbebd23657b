package rostergrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/serviceconfig"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
)

// DefaultFailOn are the status codes that count as an instance's failure
// for ejection unless the config's failOn says otherwise: the instance
// could not be reached or did not answer in time. Other codes are the
// application's answer, or concern one request (a message too large, a
// server bug on one input), and count as successes.
var DefaultFailOn = []codes.Code{codes.Unavailable, codes.DeadlineExceeded}

// lbConfig is the parsed config of one of the balancers, e.g.
// {"ejectAfter":3,"ejectFor":"10s"}. Zero fields mean the defaults. As
// gRPC asks of every policy, unknown fields are ignored, so that a config
// written for a later version still works.
type lbConfig struct {
	serviceconfig.LoadBalancingConfig `json:"-"`

	kind         string
	ejectAfter   int
	ejectFor     time.Duration
	noEjection   bool
	failOn       uint64 // a bit per code
	decay        time.Duration
	header       string
	virtualNodes int
}

func parseConfig(kind string, js json.RawMessage) (*lbConfig, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("rostergrpc: %s config: %w: %s", kind, roster.ErrInvalidOption, fmt.Sprintf(format, args...))
	}
	cfg := &lbConfig{kind: kind}
	for _, c := range DefaultFailOn {
		cfg.failOn |= 1 << c
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || bytes.Equal(js, []byte("null")) {
		return cfg, nil
	}
	var v struct {
		EjectAfter   *int          `json:"ejectAfter"`
		EjectFor     *string       `json:"ejectFor"`
		NoEjection   bool          `json:"noEjection"`
		FailOn       *[]codes.Code `json:"failOn"`
		Decay        *string       `json:"decay"`
		Header       string        `json:"header"`
		VirtualNodes int           `json:"virtualNodes"`
	}
	if err := json.Unmarshal(js, &v); err != nil {
		return nil, bad("%v", err)
	}
	var err error
	if v.EjectAfter != nil {
		if cfg.ejectAfter = *v.EjectAfter; cfg.ejectAfter < 0 {
			return nil, bad("ejectAfter %d: negative", cfg.ejectAfter)
		}
	}
	if cfg.ejectFor, err = duration(v.EjectFor); err != nil {
		return nil, bad("ejectFor: %v", err)
	}
	if cfg.decay, err = duration(v.Decay); err != nil {
		return nil, bad("decay: %v", err)
	}
	cfg.noEjection = v.NoEjection
	if v.FailOn != nil {
		cfg.failOn = 0
		for _, c := range *v.FailOn {
			if c == codes.OK || c > 63 {
				return nil, bad("failOn: code %v cannot be a failure", c)
			}
			cfg.failOn |= 1 << c
		}
	}
	if h := strings.ToLower(v.Header); h != "" {
		if !validHeader(h) {
			return nil, bad("header %q: not a metadata key (lower-case letters, digits, '-', '_', '.'; not grpc-*, not *-bin)", v.Header)
		}
		cfg.header = h
	}
	switch n := v.VirtualNodes; {
	case n < 0 || n > discovery.MaxVirtualNodes:
		return nil, bad("virtualNodes %d: outside 0..%d", n, discovery.MaxVirtualNodes)
	default:
		cfg.virtualNodes = n
	}
	return cfg, nil
}

// duration parses a JSON duration as the service config writes them, "10s"
// or "0.5s"; nil is zero.
func duration(s *string) (time.Duration, error) {
	if s == nil {
		return 0, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as \"10s\"", *s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q: negative", *s)
	}
	return d, nil
}

func validHeader(h string) bool {
	if strings.HasPrefix(h, "grpc-") || strings.HasSuffix(h, "-bin") || h[0] == ':' {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// pickerOptions are the discovery options the config asks for.
func (c *lbConfig) pickerOptions(t *telemetry) []discovery.PickerOption {
	opts := []discovery.PickerOption{discovery.WithEjection(c.ejectAfter, c.ejectFor)}
	if c.noEjection {
		opts = append(opts, discovery.WithoutEjection())
	}
	switch c.kind {
	case HashName:
		opts = append(opts, discovery.WithVirtualNodes(c.virtualNodes))
	case P2CName:
		opts = append(opts, discovery.WithLatencyDecay(c.decay))
	}
	if t != nil {
		opts = append(opts, discovery.WithLogger(t.logger), discovery.WithMeterProvider(t.mp))
	}
	return opts
}

// fails reports whether a call's error counts as the instance's failure.
func (c *lbConfig) fails(code codes.Code) bool { return code < 64 && c.failOn&(1<<code) != 0 }

func (c *lbConfig) equal(o *lbConfig) bool {
	return o != nil && c.kind == o.kind && c.ejectAfter == o.ejectAfter && c.ejectFor == o.ejectFor &&
		c.noEjection == o.noEjection && c.failOn == o.failOn && c.decay == o.decay &&
		c.header == o.header && c.virtualNodes == o.virtualNodes
}
