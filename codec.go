package roster

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"
)

// ValueVersion is the encoding version EncodeInstance writes and the
// newest one DecodeInstance reads. It changes only for incompatible
// changes; new optional fields are added without a bump, because decoders
// ignore fields they do not know.
const ValueVersion = 1

// EncodeInstance validates i and returns the etcd value that stores it: a
// JSON object with the encoding version "v", "addr", and "weight",
// "status" and "metadata" when they are not empty, for example
//
//	{"v":1,"addr":"10.0.0.7:8080","weight":5,"status":"draining","metadata":{"zone":"eu-1"}}
//
// Service and ID are not stored: they are the last two segments of the key.
// The encoding is deterministic (metadata keys are sorted), so equal
// instances give equal bytes and a registry can skip writes that would not
// change anything.
func EncodeInstance(i Instance) ([]byte, error) {
	if err := i.validateFields(); err != nil {
		return nil, err
	}
	b := appendValue(nil, i)
	if err := checkValueSize(len(b)); err != nil {
		return nil, err
	}
	return b, nil
}

// DecodeInstance parses a value written by EncodeInstance and returns the
// instance with the given service and id, taken from the value's key.
//
// It never panics and accepts any JSON object that describes a valid
// instance, not only the exact bytes EncodeInstance writes. Values that
// are empty, larger than MaxValueSize,
// not UTF-8 JSON objects, have no "v" field, or hold fields of the wrong
// type or breaking the Validate rules are rejected with an error wrapping
// ErrInvalidValue (and, for rule violations, the matching sentinel such as
// ErrInvalidAddress). A value without "v" is treated as foreign rather than
// as an old version, since every version of roster writes "v". A "v" above
// ValueVersion gives an error wrapping ErrUnsupportedVersion, which itself
// wraps ErrInvalidValue. Unknown fields are ignored. An invalid service or
// id is the caller's mistake, not the value's, and gives an
// ErrInvalidName error.
func DecodeInstance(service, id string, value []byte) (Instance, error) {
	if err := ValidateName("service", service); err != nil {
		return Instance{}, err
	}
	if err := ValidateName("instance ID", id); err != nil {
		return Instance{}, err
	}
	inst, err := decodeValue(service, id, value)
	if err != nil {
		return Instance{}, err
	}
	inst.Service, inst.ID = service, id
	// No size check is needed here: the canonical encoding of a decoded
	// value is never longer than the UTF-8 JSON it came from, which was
	// at most MaxValueSize.
	if err := inst.validateFields(); err != nil {
		return Instance{}, fmt.Errorf("%w: instance %q: %w", ErrInvalidValue, service+"/"+id, err)
	}
	return inst, nil
}

// wireValue is the JSON shape of an encoded instance. V is a pointer so a
// missing version can be told apart from version 0.
type wireValue struct {
	V        *int              `json:"v"`
	Addr     string            `json:"addr"`
	Weight   int               `json:"weight"`
	Status   Status            `json:"status"`
	Metadata map[string]string `json:"metadata"`
}

// decodeValue parses value into an Instance without Service and ID and
// without validating its fields. service and id only name the instance in
// errors.
func decodeValue(service, id string, value []byte) (Instance, error) {
	invalid := func(reason string) error {
		return fmt.Errorf("%w: instance %q: %s", ErrInvalidValue, service+"/"+id, reason)
	}
	switch {
	case len(value) == 0:
		return Instance{}, invalid("empty")
	case len(value) > MaxValueSize:
		return Instance{}, invalid(fmt.Sprintf("%d bytes, more than %d", len(value), MaxValueSize))
	case !utf8.Valid(value):
		// encoding/json would silently replace the bad bytes.
		return Instance{}, invalid("not valid UTF-8")
	}
	var w wireValue
	err := json.Unmarshal(value, &w)
	// On a type mismatch json.Unmarshal still fills the other fields, so a
	// newer version is reported as such even if its fields changed type.
	if w.V != nil && *w.V > ValueVersion {
		return Instance{}, fmt.Errorf("%w: instance %q: version %d, this build reads up to %d",
			ErrUnsupportedVersion, service+"/"+id, *w.V, ValueVersion)
	}
	switch {
	case err != nil:
		return Instance{}, invalid(jsonProblem(err))
	case w.V == nil:
		return Instance{}, invalid(`no "v" (version) field`)
	case *w.V < 1:
		return Instance{}, invalid(fmt.Sprintf("version %d", *w.V))
	}
	if len(w.Metadata) == 0 {
		w.Metadata = nil
	}
	return Instance{Addr: w.Addr, Metadata: w.Metadata, Weight: w.Weight, Status: w.Status}, nil
}

// jsonProblem describes a json.Unmarshal error in terms of the value's
// fields rather than of this package's Go types.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case !errors.As(err, &te):
		return "not JSON: " + err.Error()
	case te.Field == "":
		return "want a JSON object, got " + te.Value
	default:
		return fmt.Sprintf("field %q: unexpected %s", te.Field, te.Value)
	}
}

// appendValue appends the canonical encoding of i to dst. It assumes i has
// passed validateFields, so every string is valid UTF-8.
//
// It writes JSON by hand rather than with encoding/json to stay
// allocation-light and, more importantly, to control the exact bytes:
// strings escape only what JSON requires, using the shortest escapes, so a
// decoded value never re-encodes longer than it was.
func appendValue(dst []byte, i Instance) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, ValueVersion, 10)
	dst = append(dst, `,"addr":`...)
	dst = appendString(dst, i.Addr)
	if i.Weight != 0 {
		dst = append(dst, `,"weight":`...)
		dst = strconv.AppendInt(dst, int64(i.Weight), 10)
	}
	if i.Status != "" {
		dst = append(dst, `,"status":`...)
		dst = appendString(dst, string(i.Status))
	}
	if len(i.Metadata) > 0 {
		dst = append(dst, `,"metadata":{`...)
		for n, k := range slices.Sorted(maps.Keys(i.Metadata)) {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, i.Metadata[k])
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string. s must be valid UTF-8.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for j := 0; j < len(s); j++ {
		switch b := s[j]; b {
		case '"', '\\':
			dst = append(dst, '\\', b)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			if b < 0x20 {
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			} else {
				dst = append(dst, b)
			}
		}
	}
	return append(dst, '"')
}
