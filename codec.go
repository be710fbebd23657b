package roster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
// The encoding is encoding/json's, without HTML escaping, so it is
// deterministic (metadata keys are sorted): equal instances give equal
// bytes and a registry can skip writes that would not change anything.
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
// are empty, larger than MaxValueSize, not UTF-8 JSON objects, have no "v"
// field, or hold fields of the wrong type or breaking the Validate rules
// (the size of the value EncodeInstance would write included) are rejected
// with an error wrapping ErrInvalidValue (and, for rule violations, the
// matching sentinel such as ErrInvalidAddress). A value without "v" is
// treated as foreign rather than as an old version, since every version of
// roster writes "v". A "v" above ValueVersion gives an error wrapping
// ErrUnsupportedVersion, which itself wraps ErrInvalidValue. Unknown fields
// are ignored. An invalid service or id is the caller's mistake, not the
// value's, and gives an ErrInvalidName error.
func DecodeInstance(service, id string, value []byte) (Instance, error) {
	return decodeInstance(service, id, value, nil)
}

// A Decoder decodes values as DecodeInstance does and hands out one map
// for equal metadata, so that many instances with the same labels (zone,
// version) hold them once. The maps are shared: never modify them. It
// remembers a bounded number of label sets. The zero value is ready to
// use; a Decoder is not safe for concurrent use.
type Decoder struct {
	shared map[string]map[string]string // by the metadata's JSON text
}

// maxShared bounds how many label sets a Decoder remembers: past it, the
// table starts over, so unique labels cannot make it grow without end.
const maxShared = 4096

// Decode is DecodeInstance with shared metadata maps.
func (d *Decoder) Decode(service, id string, value []byte) (Instance, error) {
	return decodeInstance(service, id, value, d)
}

func decodeInstance(service, id string, value []byte, d *Decoder) (Instance, error) {
	if err := ValidateName("service", service); err != nil {
		return Instance{}, err
	}
	if err := ValidateName("instance ID", id); err != nil {
		return Instance{}, err
	}
	inst, shared, err := decodeValue(service, id, value, d)
	if err != nil {
		return Instance{}, err
	}
	inst.Service, inst.ID = service, id
	md := inst.Metadata
	if shared {
		inst.Metadata = nil // validated when it was first decoded
	}
	if err := inst.validateFields(); err != nil {
		return Instance{}, fmt.Errorf("%w: instance %q: %w", ErrInvalidValue, service+"/"+id, err)
	}
	inst.Metadata = md
	// encoding/json escapes U+2028 and U+2029 (3 bytes each) in 6: only a
	// value holding them can encode longer than it is.
	if bytes.Contains(value, lineSep) || bytes.Contains(value, paraSep) {
		if err := checkValueSize(len(appendValue(nil, inst))); err != nil {
			return Instance{}, fmt.Errorf("%w: instance %q: %w", ErrInvalidValue, service+"/"+id, err)
		}
	}
	return inst, nil
}

var (
	lineSep = []byte("\u2028")
	paraSep = []byte("\u2029")
)

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
// without validating its fields, except for metadata d had seen before
// (shared). service and id only name the instance in errors.
func decodeValue(service, id string, value []byte, d *Decoder) (_ Instance, shared bool, _ error) {
	invalid := func(reason string) error {
		return fmt.Errorf("%w: instance %q: %s", ErrInvalidValue, service+"/"+id, reason)
	}
	switch {
	case len(value) == 0:
		return Instance{}, false, invalid("empty")
	case len(value) > MaxValueSize:
		return Instance{}, false, invalid(fmt.Sprintf("%d bytes, more than %d", len(value), MaxValueSize))
	case !utf8.Valid(value):
		// encoding/json would silently replace the bad bytes.
		return Instance{}, false, invalid("not valid UTF-8")
	}
	if inst, shared, ok := decodeCommon(value, d); ok {
		return inst, shared, nil
	}
	var w wireValue
	err := json.Unmarshal(value, &w)
	// On a type mismatch json.Unmarshal still fills the other fields, so a
	// newer version is reported as such even if its fields changed type.
	if w.V != nil && *w.V > ValueVersion {
		return Instance{}, false, fmt.Errorf("%w: instance %q: version %d, this build reads up to %d",
			ErrUnsupportedVersion, service+"/"+id, *w.V, ValueVersion)
	}
	switch {
	case err != nil:
		return Instance{}, false, invalid(jsonProblem(err))
	case w.V == nil:
		return Instance{}, false, invalid(`no "v" (version) field`)
	case *w.V < 1:
		return Instance{}, false, invalid(fmt.Sprintf("version %d", *w.V))
	}
	if len(w.Metadata) == 0 {
		w.Metadata = nil
	}
	return Instance{Addr: w.Addr, Metadata: w.Metadata, Weight: w.Weight, Status: w.Status}, false, nil
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

// wire is what appendValue hands to encoding/json: the fields in their
// order, empty ones left out.
type wire struct {
	V        int               `json:"v"`
	Addr     string            `json:"addr"`
	Weight   int               `json:"weight,omitempty"`
	Status   Status            `json:"status,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// appendValue appends the encoding of i to dst. It assumes i has passed
// validateFields, so every string is valid UTF-8 and encoding cannot fail.
func appendValue(dst []byte, i Instance) []byte {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(wire{V: ValueVersion, Addr: i.Addr, Weight: i.Weight, Status: i.Status, Metadata: i.Metadata})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// decodeCommon decodes the common shape of a value without reflection: an
// object of the known fields, each at most once, whose strings need no
// unescaping and whose numbers are small non-negative integers, in version
// 1. ok is false for anything else — other spellings, unknown fields,
// escapes, errors — which json.Unmarshal then decodes, so both paths accept
// and reject exactly the same values (a fuzz test holds them equal). The
// value is valid UTF-8.
func decodeCommon(b []byte, d *Decoder) (inst Instance, shared, ok bool) {
	p := parser{b: b}
	if !p.byte('{') {
		return Instance{}, false, false
	}
	var seen uint8 // bit per field
	for first := true; ; first = false {
		if p.byte('}') {
			break
		}
		if !first && !p.byte(',') {
			return Instance{}, false, false
		}
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return Instance{}, false, false
		}
		var bit uint8
		switch string(key) {
		case "v":
			bit = 1
			v, ok := p.uint()
			if !ok || v != ValueVersion {
				return Instance{}, false, false
			}
		case "addr":
			bit = 2
			s, ok := p.str()
			if !ok {
				return Instance{}, false, false
			}
			inst.Addr = string(s)
		case "weight":
			bit = 4
			w, ok := p.uint()
			if !ok {
				return Instance{}, false, false
			}
			inst.Weight = w
		case "status":
			bit = 8
			s, ok := p.str()
			if !ok {
				return Instance{}, false, false
			}
			switch string(s) {
			case string(StatusServing):
				inst.Status = StatusServing
			case string(StatusDraining):
				inst.Status = StatusDraining
			default:
				inst.Status = Status(s)
			}
		case "metadata":
			bit = 16
			var md map[string]string
			if md, shared, ok = p.metadata(d); !ok {
				return Instance{}, false, false
			}
			inst.Metadata = md
		default:
			return Instance{}, false, false
		}
		if seen&bit != 0 {
			return Instance{}, false, false
		}
		seen |= bit
	}
	p.space()
	return inst, shared, seen&1 != 0 && p.i == len(b)
}

// parser reads the tokens decodeCommon accepts, skipping white space
// before each.
type parser struct {
	b []byte
	i int
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c if it comes next.
func (p *parser) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters and returns
// its contents, which alias the input.
func (p *parser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// uint reads 0 or an integer of up to 9 digits without a leading zero,
// followed by neither a fraction nor an exponent.
func (p *parser) uint() (int, bool) {
	p.space()
	n, start := 0, p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	switch {
	case digits == 0 || digits > 9 || (digits > 1 && p.b[start] == '0'):
		return 0, false
	case p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E'):
		return 0, false
	}
	return n, true
}

// metadata reads an object of strings. An empty one gives nil, as
// json.Unmarshal's result is turned into. With a Decoder, equal objects
// give one shared map.
func (p *parser) metadata(d *Decoder) (md map[string]string, shared, ok bool) {
	p.space()
	start := p.i
	if !p.byte('{') {
		return nil, false, false
	}
	if p.byte('}') {
		return nil, false, true
	}
	if d != nil {
		q := *p
		if q.pairs() {
			if m, ok := d.shared[string(p.b[start:q.i])]; ok {
				p.i = q.i
				return m, true, true
			}
		}
	}
	md = make(map[string]string, 2)
	for first := true; ; first = false {
		if !first {
			if p.byte('}') {
				break
			}
			if !p.byte(',') {
				return nil, false, false
			}
		}
		k, ok := p.str()
		if !ok || !p.byte(':') {
			return nil, false, false
		}
		v, ok := p.str()
		if !ok {
			return nil, false, false
		}
		md[string(k)] = string(v) // a repeated key keeps its last value, as in json.Unmarshal
	}
	if d != nil && validateMetadata(md) == nil {
		if d.shared == nil || len(d.shared) >= maxShared {
			d.shared = make(map[string]map[string]string)
		}
		d.shared[string(p.b[start:p.i])] = md
	}
	return md, false, true
}

// pairs reads the rest of a non-empty object of strings, up to and with
// its closing brace, and says whether it had the form metadata accepts.
func (p *parser) pairs() bool {
	for first := true; ; first = false {
		if !first {
			if p.byte('}') {
				return true
			}
			if !p.byte(',') {
				return false
			}
		}
		if _, ok := p.str(); !ok || !p.byte(':') {
			return false
		}
		if _, ok := p.str(); !ok {
			return false
		}
	}
}
