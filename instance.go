package roster

import (
	"fmt"
	"net"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Limits enforced by Instance.Validate. They keep every instance value small
// because discovery clients hold all instances of a service in memory and
// etcd replicates every write to all members.
const (
	// MaxAddrLen is the longest Instance.Addr, in bytes: room for any DNS
	// name (253 bytes) plus port, with slack for IPv6 zones.
	MaxAddrLen = 512
	// MaxWeight is the largest Instance.Weight.
	MaxWeight = 10000
	// MaxMetadataKeyLen is the longest metadata key, in bytes.
	MaxMetadataKeyLen = 128
	// MaxMetadataValueLen is the longest metadata value, in bytes.
	MaxMetadataValueLen = 1024
	// MaxValueSize is the largest encoded instance value (see
	// EncodeInstance), in bytes.
	MaxValueSize = 16 << 10
)

// Status says whether an instance should receive new work.
type Status string

// Instance statuses. The empty Status means StatusServing, so an Instance
// built without one is picked by discovery.
const (
	// StatusServing marks an instance that accepts new work.
	StatusServing Status = "serving"
	// StatusDraining marks an instance that stays registered while it
	// finishes in-flight work, but should not be picked for new work.
	StatusDraining Status = "draining"
)

// Instance is one registered endpoint of a service: what the registry
// writes under <namespace>/services/<Service>/<ID> and what discovery
// hands back.
type Instance struct {
	// Service is the name of the service the instance belongs to. It is
	// part of the etcd key, not of the stored value.
	Service string
	// ID identifies the instance within its service, e.g. a host name or
	// pod name. It is part of the etcd key, not of the stored value.
	ID string
	// Addr is where clients reach the instance, as host:port.
	Addr string
	// Metadata carries free-form labels such as zone or version. Decoded
	// instances have nil Metadata when there is none.
	Metadata map[string]string
	// Weight biases weighted picking, in 0..MaxWeight. 0 means the default
	// weight 1 (see EffectiveWeight), so an unset Weight still gets
	// traffic.
	Weight int
	// Status is StatusServing, StatusDraining or "" (serving).
	Status Status
}

// EffectiveWeight returns the weight to use when picking: Weight, or 1 when
// Weight is 0 (unset). Invalid negative weights also count as 1, so a
// picker never sees a weight below 1.
func (i Instance) EffectiveWeight() int {
	if i.Weight <= 0 {
		return 1
	}
	return i.Weight
}

// Serving reports whether the instance should receive new work: its Status
// is StatusServing or empty. Unknown statuses count as not serving, so a
// newer writer's status is never mistaken for a healthy one.
func (i Instance) Serving() bool {
	return i.Status == "" || i.Status == StatusServing
}

// Validate checks every field against the rules the registry enforces
// before writing and discovery enforces after reading, so a bad instance
// is reported to the process that made it instead of to its consumers:
//
//   - Service and ID pass ValidateName.
//   - Addr is host:port, at most MaxAddrLen bytes of printable ASCII
//     without spaces, with a non-empty host and a numeric port in
//     1..65535.
//   - Weight is in 0..MaxWeight and Status is "", StatusServing or
//     StatusDraining.
//   - Metadata keys are non-empty printable UTF-8 of at most
//     MaxMetadataKeyLen bytes; values are UTF-8 of at most
//     MaxMetadataValueLen bytes; the whole encoded value (see
//     EncodeInstance) is at most MaxValueSize bytes.
//
// The error names the field and the offending value and wraps
// ErrInvalidName, ErrInvalidAddress, ErrInvalidInstance or
// ErrInvalidMetadata.
func (i Instance) Validate() error {
	if err := i.validateFields(); err != nil {
		return err
	}
	return checkValueSize(len(appendValue(nil, i)))
}

// validateFields checks everything but the encoded size, which callers
// establish in the way that is cheapest for them.
func (i Instance) validateFields() error {
	if err := ValidateName("service", i.Service); err != nil {
		return err
	}
	if err := ValidateName("instance ID", i.ID); err != nil {
		return err
	}
	if err := validateAddr(i.Addr); err != nil {
		return err
	}
	if i.Weight < 0 || i.Weight > MaxWeight {
		return fmt.Errorf("%w: weight %d: outside 0..%d", ErrInvalidInstance, i.Weight, MaxWeight)
	}
	switch i.Status {
	case "", StatusServing, StatusDraining:
	default:
		return fmt.Errorf("%w: status %q: want %q or %q", ErrInvalidInstance, clip(string(i.Status)), StatusServing, StatusDraining)
	}
	return validateMetadata(i.Metadata)
}

// validateAddr requires host:port with a numeric port, because clients dial
// the address as is and named ports resolve differently per machine. The
// whole address must be printable ASCII without spaces (IPv6 zones and
// punycode host names are fine).
func validateAddr(addr string) error {
	if len(addr) > MaxAddrLen {
		return fmt.Errorf("%w: %q: longer than %d bytes", ErrInvalidAddress, clip(addr), MaxAddrLen)
	}
	for j := 0; j < len(addr); j++ {
		if b := addr[j]; b < 0x21 || b > 0x7e {
			return fmt.Errorf("%w: %q: contains byte 0x%02x; only printable ASCII without spaces is allowed", ErrInvalidAddress, clip(addr), b)
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %q: want host:port", ErrInvalidAddress, clip(addr))
	}
	if host == "" {
		return fmt.Errorf("%w: %q: empty host", ErrInvalidAddress, clip(addr))
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%w: %q: port %q: want a number in 1..65535", ErrInvalidAddress, clip(addr), clip(port))
	}
	return nil
}

// validateMetadata checks each entry and reports the offending entry with
// the smallest key, so the error does not depend on map iteration order.
func validateMetadata(md map[string]string) error {
	var (
		badKey    string
		badReason string
	)
	for k, v := range md {
		if badReason != "" && k >= badKey {
			continue
		}
		if reason := metadataProblem(k, v); reason != "" {
			badKey, badReason = k, reason
		}
	}
	if badReason != "" {
		return fmt.Errorf("%w: key %q: %s", ErrInvalidMetadata, clip(badKey), badReason)
	}
	return nil
}

// metadataProblem returns why a metadata entry is invalid, or "" if it is
// valid. Keys and values must be valid UTF-8 because the JSON encoding
// cannot carry other bytes without altering them.
func metadataProblem(k, v string) string {
	switch {
	case k == "":
		return "empty key"
	case len(k) > MaxMetadataKeyLen:
		return fmt.Sprintf("key longer than %d bytes", MaxMetadataKeyLen)
	case !utf8.ValidString(k):
		return "key is not valid UTF-8"
	case len(v) > MaxMetadataValueLen:
		return fmt.Sprintf("value longer than %d bytes", MaxMetadataValueLen)
	case !utf8.ValidString(v):
		return "value is not valid UTF-8"
	}
	for _, r := range k {
		if !unicode.IsPrint(r) {
			return fmt.Sprintf("key contains non-printable %U", r)
		}
	}
	return ""
}

// checkValueSize enforces MaxValueSize on an encoded value's length.
func checkValueSize(n int) error {
	if n > MaxValueSize {
		return fmt.Errorf("%w: encoded value is %d bytes, more than %d", ErrInvalidMetadata, n, MaxValueSize)
	}
	return nil
}
