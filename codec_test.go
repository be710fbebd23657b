package roster_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
)

func TestEncodeInstanceExactBytes(t *testing.T) {
	tests := []struct {
		name string
		in   roster.Instance
		want string
	}{
		{
			name: "minimal",
			in:   roster.Instance{Service: "s", ID: "i", Addr: "h:1"},
			want: `{"v":1,"addr":"h:1"}`,
		},
		{
			name: "empty metadata is omitted",
			in:   roster.Instance{Service: "s", ID: "i", Addr: "h:1", Metadata: map[string]string{}},
			want: `{"v":1,"addr":"h:1"}`,
		},
		{
			name: "all fields, metadata sorted",
			in: roster.Instance{
				Service: "s", ID: "i", Addr: "[::1]:443", Weight: 5, Status: roster.StatusDraining,
				Metadata: map[string]string{"zone": "eu-1", "version": "1.2.3", "a": ""},
			},
			want: `{"v":1,"addr":"[::1]:443","weight":5,"status":"draining","metadata":{"a":"","version":"1.2.3","zone":"eu-1"}}`,
		},
		{
			name: "strings escape what JSON requires, and U+2028",
			in: roster.Instance{
				Service: "s", ID: "i", Addr: "h:1",
				Metadata: map[string]string{"k\"\\": "\"\\\b\f\n\r\t\x00\x1f\x7f<>&/\u00e9\u2028"},
			},
			// encoding/json's escapes, HTML escaping off: U+2028 and U+2029
			// are the only characters escaped that JSON does not require.
			want: `{"v":1,"addr":"h:1","metadata":{"k\"\\":"\"\\\b\f\n\r\t\u0000\u001f` + "\x7f<>&/\u00e9" + `\u2028"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := roster.EncodeInstance(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(b))
			assert.True(t, json.Valid(b))

			got, err := roster.DecodeInstance(tt.in.Service, tt.in.ID, b)
			require.NoError(t, err)
			want := tt.in
			if len(want.Metadata) == 0 {
				want.Metadata = nil
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestEncodeInstanceMatchesEncodingJSON(t *testing.T) {
	// Every byte value and some multi-byte runes, to check the hand-written
	// string escaping against the standard library's decoder.
	var all strings.Builder
	for b := range 0x80 {
		all.WriteByte(byte(b))
	}
	all.WriteString("\u00e9\u2028\u2029\ufffd\U0001f600")
	inst := roster.Instance{Service: "s", ID: "i", Addr: "h:1", Metadata: map[string]string{"v": all.String()}}

	b, err := roster.EncodeInstance(inst)
	require.NoError(t, err)
	var decoded struct {
		Metadata map[string]string `json:"metadata"`
	}
	require.NoError(t, json.Unmarshal(b, &decoded))
	assert.Equal(t, inst.Metadata, decoded.Metadata)
}

func TestEncodeInstanceIsDeterministic(t *testing.T) {
	inst := validInstance()
	inst.Metadata = map[string]string{}
	for i := range 50 {
		inst.Metadata[fmt.Sprint("key", i)] = fmt.Sprint(i)
	}
	first, err := roster.EncodeInstance(inst)
	require.NoError(t, err)
	for range 20 {
		b, err := roster.EncodeInstance(inst)
		require.NoError(t, err)
		require.Equal(t, first, b)
	}
}

func TestDecodeInstanceAcceptsEquivalentJSON(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  roster.Instance
	}{
		{
			name:  "whitespace and field order",
			value: " {\n\"metadata\" : {\"b\":\"2\", \"a\":\"1\"}, \"addr\":\"h:1\", \"v\": 1 }\n",
			want:  roster.Instance{Addr: "h:1", Metadata: map[string]string{"a": "1", "b": "2"}},
		},
		{
			name:  "unknown fields are ignored",
			value: `{"v":1,"addr":"h:1","future":{"x":[1,2]}}`,
			want:  roster.Instance{Addr: "h:1"},
		},
		{
			name:  "explicit zero values",
			value: `{"v":1,"addr":"h:1","weight":0,"status":"","metadata":{}}`,
			want:  roster.Instance{Addr: "h:1"},
		},
		{
			name:  "null metadata",
			value: `{"v":1,"addr":"h:1","metadata":null}`,
			want:  roster.Instance{Addr: "h:1"},
		},
		{
			name:  "escaped strings",
			value: `{"v":1,"addr":"h:\u0031","metadata":{"k":"\u00e9\/"}}`,
			want:  roster.Instance{Addr: "h:1", Metadata: map[string]string{"k": "\u00e9/"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := roster.DecodeInstance("svc", "id", []byte(tt.value))
			require.NoError(t, err)
			tt.want.Service, tt.want.ID = "svc", "id"
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeInstanceRejects(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  error
		msg   string
	}{
		{"nil", "", roster.ErrInvalidValue, `instance "svc/id": empty`},
		{"too large", `{"v":1,"addr":"h:1","x":"` + strings.Repeat("x", roster.MaxValueSize) + `"}`, roster.ErrInvalidValue, "more than 16384"},
		{"invalid UTF-8", "{\"v\":1,\"addr\":\"h:1\",\"metadata\":{\"k\":\"\xff\"}}", roster.ErrInvalidValue, "not valid UTF-8"},
		{"not JSON", "h:1", roster.ErrInvalidValue, "not JSON: invalid character"},
		{"truncated", `{"v":1,"addr":"h:1"`, roster.ErrInvalidValue, "not JSON: unexpected end"},
		{"trailing data", `{"v":1,"addr":"h:1"}{}`, roster.ErrInvalidValue, "not JSON"},
		{"array", `[1]`, roster.ErrInvalidValue, "want a JSON object, got array"},
		{"string", `"h:1"`, roster.ErrInvalidValue, "want a JSON object, got string"},
		{"null", `null`, roster.ErrInvalidValue, `no "v" (version) field`},
		{"empty object", `{}`, roster.ErrInvalidValue, `no "v" (version) field`},
		{"foreign JSON", `{"Addr":"h:1","Port":80}`, roster.ErrInvalidValue, `no "v"`},
		{"null version", `{"v":null,"addr":"h:1"}`, roster.ErrInvalidValue, `no "v"`},
		{"version zero", `{"v":0,"addr":"h:1"}`, roster.ErrInvalidValue, "version 0"},
		{"negative version", `{"v":-1,"addr":"h:1"}`, roster.ErrInvalidValue, "version -1"},
		{"string version", `{"v":"1","addr":"h:1"}`, roster.ErrInvalidValue, `field "v": unexpected string`},
		{"fractional version", `{"v":1.5,"addr":"h:1"}`, roster.ErrInvalidValue, `field "v": unexpected number 1.5`},
		{"huge version", `{"v":1e30,"addr":"h:1"}`, roster.ErrInvalidValue, `field "v": unexpected number 1e30`},
		{"newer version", `{"v":2,"addr":"h:1"}`, roster.ErrUnsupportedVersion, "version 2, this build reads up to 1"},
		{"newer version, changed fields", `{"v":2,"addr":{"host":"h","port":1}}`, roster.ErrUnsupportedVersion, "version 2"},
		{"missing addr", `{"v":1}`, roster.ErrInvalidAddress, `invalid value: instance "svc/id": roster: invalid address: "": want host:port`},
		{"bad addr", `{"v":1,"addr":"h"}`, roster.ErrInvalidAddress, `"h": want host:port`},
		{"numeric addr", `{"v":1,"addr":80}`, roster.ErrInvalidValue, `field "addr": unexpected number`},
		{"string weight", `{"v":1,"addr":"h:1","weight":"5"}`, roster.ErrInvalidValue, `field "weight": unexpected string`},
		{"float weight", `{"v":1,"addr":"h:1","weight":1.5}`, roster.ErrInvalidValue, `field "weight": unexpected number 1.5`},
		{"negative weight", `{"v":1,"addr":"h:1","weight":-1}`, roster.ErrInvalidInstance, "weight -1"},
		{"big weight", `{"v":1,"addr":"h:1","weight":99999999999999999999}`, roster.ErrInvalidValue, `field "weight": unexpected number`},
		{"unknown status", `{"v":1,"addr":"h:1","status":"down"}`, roster.ErrInvalidInstance, `status "down"`},
		{"metadata array", `{"v":1,"addr":"h:1","metadata":["a"]}`, roster.ErrInvalidValue, `field "metadata": unexpected array`},
		{"metadata number", `{"v":1,"addr":"h:1","metadata":{"k":1}}`, roster.ErrInvalidValue, "unexpected number"},
		{"metadata control key", `{"v":1,"addr":"h:1","metadata":{"\u0000":"x"}}`, roster.ErrInvalidMetadata, "non-printable U+0000"},
		{"metadata long value", `{"v":1,"addr":"h:1","metadata":{"k":"` + strings.Repeat("v", roster.MaxMetadataValueLen+1) + `"}}`, roster.ErrInvalidMetadata, "value longer than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := roster.DecodeInstance("svc", "id", []byte(tt.value))
			require.ErrorIs(t, err, tt.want)
			require.ErrorIs(t, err, roster.ErrInvalidValue, "every bad value must be skippable as ErrInvalidValue")
			assert.Contains(t, err.Error(), tt.msg)
			assert.Contains(t, err.Error(), `instance "svc/id"`)
			assert.Equal(t, roster.Instance{}, got)
		})
	}
}

func TestDecodeInstanceRejectsBadKeyNames(t *testing.T) {
	value := []byte(`{"v":1,"addr":"h:1"}`)
	for _, tc := range [][2]string{{"", "id"}, {"svc", ""}, {"a/b", "id"}, {"svc", "a b"}} {
		_, err := roster.DecodeInstance(tc[0], tc[1], value)
		require.ErrorIs(t, err, roster.ErrInvalidName, "%q", tc)
		// The value is fine; the caller passed a bad key.
		assert.False(t, errors.Is(err, roster.ErrInvalidValue), "%q", tc)
	}
}

func FuzzDecodeInstance(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"addr":"h:1"}`,
		`{"v":1,"addr":"[::1]:443","weight":5,"status":"draining","metadata":{"a":"","zone":"eu-1"}}`,
		`{"v":1,"addr":"h:1","metadata":{"k":"\"\\\b\f\n\r\t\u0000\u00e9\u2028\/"}}`,
		`{"v":1,"addr":"h:1","status":"serving","weight":10000,"x":[1,{"y":null}]}`,
		`{"V":1,"ADDR":"h:1","Metadata":{"k":"v"},"metadata":{"k2":"v2"}}`,
		`{"v":1,"addr":"h:1","metadata":{"k":"a"},"metadata":null}`,
		`{"v":1,"addr":"h:1","metadata":{"k":"a","k":"b"}}`,
		`{"v":1,"addr":"h:1","metadata":{"\ud800":"\udfff"}}`,
		`{"v":2,"addr":"h:1"}`,
		`{"v":0}`,
		`{"v":1,"addr":"h:1","weight":-0}`,
		`{"v":1,"addr":"h:1","weight":1e2}`,
		`{"v":1,"addr":"h:1","weight":01}`,
		`{"v":1,"addr":"h:1","weight":99999}`,
		` { "v" : 1 , "addr" : "h:1" , "metadata" : { "a" : "b" } } `,
		`{"v":1,"v":1,"addr":"h:1"}`,
		"{\"v\":1,\"addr\":\"h:1\",\"metadata\":{\"k\":\"\u2028\"}}",
		`null`,
		`[]`,
		`{`,
		"\xff",
		"",
	} {
		f.Add([]byte(seed))
	}
	var shared roster.Decoder // remembers label sets across inputs
	f.Fuzz(func(t *testing.T, value []byte) {
		inst, err := roster.DecodeInstance("svc", "id", value)
		want, wantErr := referenceDecode("svc", "id", value)
		require.Equal(t, wantErr == nil, err == nil, "as encoding/json decodes it: %v / %v", wantErr, err)
		require.Equal(t, want, inst, "as encoding/json decodes it")
		viaDecoder, derr := shared.Decode("svc", "id", value)
		require.Equal(t, err, derr)
		require.Equal(t, inst, viaDecoder)
		if err != nil {
			require.ErrorIs(t, err, roster.ErrInvalidValue)
			require.Equal(t, roster.Instance{}, inst)
			return
		}
		require.NoError(t, inst.Validate())
		b, err := roster.EncodeInstance(inst)
		require.NoError(t, err, "a decoded instance must re-encode")
		// Only U+2028 and U+2029 (3 bytes) encode longer (6) than the
		// shortest JSON for them.
		grows := 3 * (bytes.Count(value, []byte("\u2028")) + bytes.Count(value, []byte("\u2029")))
		require.LessOrEqual(t, len(b), len(value)+grows, "the encoding is never longer than its input")
		again, err := roster.DecodeInstance("svc", "id", b)
		require.NoError(t, err)
		require.Equal(t, inst, again)
		b2, err := roster.EncodeInstance(again)
		require.NoError(t, err)
		require.Equal(t, b, b2)
	})
}

// referenceDecode is the specification of DecodeInstance's value rules,
// written with json.Unmarshal alone: its faster path must agree with it on
// every input.
func referenceDecode(service, id string, value []byte) (roster.Instance, error) {
	if len(value) == 0 || len(value) > roster.MaxValueSize || !utf8.Valid(value) {
		return roster.Instance{}, roster.ErrInvalidValue
	}
	var w struct {
		V        *int              `json:"v"`
		Addr     string            `json:"addr"`
		Weight   int               `json:"weight"`
		Status   roster.Status     `json:"status"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(value, &w); err != nil || w.V == nil || *w.V != roster.ValueVersion {
		return roster.Instance{}, roster.ErrInvalidValue
	}
	if len(w.Metadata) == 0 {
		w.Metadata = nil
	}
	inst := roster.Instance{Service: service, ID: id, Addr: w.Addr, Weight: w.Weight, Status: w.Status, Metadata: w.Metadata}
	if err := inst.Validate(); err != nil {
		return roster.Instance{}, err
	}
	return inst, nil
}

func TestDecodeInstanceChecksTheEncodedSize(t *testing.T) {
	// 5,000 U+2028 fit in a value; escaped, they would not.
	value := []byte(`{"v":1,"addr":"h:1","metadata":{"k":"` + strings.Repeat("\u2028", 5000) + `"}}`)
	require.Less(t, len(value), roster.MaxValueSize)
	_, err := roster.DecodeInstance("svc", "id", value)
	require.ErrorIs(t, err, roster.ErrInvalidValue)
	require.ErrorIs(t, err, roster.ErrInvalidMetadata)
}

func TestDecoderSharesEqualMetadata(t *testing.T) {
	var d roster.Decoder
	a, err := d.Decode("svc", "a", []byte(`{"v":1,"addr":"h:1","metadata":{"version":"2","zone":"eu-1"}}`))
	require.NoError(t, err)
	b, err := d.Decode("svc", "b", []byte(`{"v":1,"addr":"h:2","metadata":{"version":"2","zone":"eu-1"}}`))
	require.NoError(t, err)
	c, err := d.Decode("svc", "c", []byte(`{"v":1,"addr":"h:2","metadata":{"version":"3","zone":"eu-1"}}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"version": "2", "zone": "eu-1"}, b.Metadata)
	assert.Equal(t, reflect.ValueOf(a.Metadata).Pointer(), reflect.ValueOf(b.Metadata).Pointer(), "one map for equal labels")
	assert.NotEqual(t, reflect.ValueOf(a.Metadata).Pointer(), reflect.ValueOf(c.Metadata).Pointer())
	assert.Equal(t, "3", c.Metadata["version"])
	// Plain DecodeInstance never shares.
	e, err := roster.DecodeInstance("svc", "e", []byte(`{"v":1,"addr":"h:1","metadata":{"version":"2","zone":"eu-1"}}`))
	require.NoError(t, err)
	assert.NotEqual(t, reflect.ValueOf(a.Metadata).Pointer(), reflect.ValueOf(e.Metadata).Pointer())
}

func ExampleEncodeInstance() {
	b, err := roster.EncodeInstance(roster.Instance{
		Service:  "checkout",
		ID:       "pod-7",
		Addr:     "10.0.0.7:8080",
		Weight:   5,
		Metadata: map[string]string{"zone": "eu-1"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))

	// Service and ID come back from the key the value was stored under.
	inst, err := roster.DecodeInstance("checkout", "pod-7", b)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(inst.Service, inst.ID, inst.Addr, inst.EffectiveWeight(), inst.Serving())
	// Output:
	// {"v":1,"addr":"10.0.0.7:8080","weight":5,"metadata":{"zone":"eu-1"}}
	// checkout pod-7 10.0.0.7:8080 5 true
}

// BenchmarkCodec compares, in one run, the encoders and decoders:
// EncodeInstance (validation + encoding/json) and the two encoders alone
// (encoding/json as EncodeInstance uses it, and the hand-written one it
// replaced); DecodeInstance (validation + its reflection-free path), with
// a Decoder sharing metadata, and json.Unmarshal alone, which the decoder
// used before, without validation.
//
//	go test -run '^$' -bench Codec -benchmem .
func BenchmarkCodec(b *testing.B) {
	inst := validInstance()
	inst.Metadata = map[string]string{"zone": "eu-1", "version": "1.2.3", "build": "abc123"}
	value, err := roster.EncodeInstance(inst)
	require.NoError(b, err)
	require.Equal(b, string(value), string(handEncode(nil, inst)), "both encoders write the same bytes")
	require.Equal(b, string(value), string(stdEncode(inst)))
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"encode/roster", func() error { _, err := roster.EncodeInstance(inst); return err }},
		{"encode/encoding-json-only", func() error { stdEncode(inst); return nil }},
		{"encode/hand-written-only", func() error { handEncode(nil, inst); return nil }},
		{"decode/roster", func() error { _, err := roster.DecodeInstance(inst.Service, inst.ID, value); return err }},
		{"decode/roster-shared-metadata", func() func() error {
			var d roster.Decoder
			return func() error { _, err := d.Decode(inst.Service, inst.ID, value); return err }
		}()},
		{"decode/json-unmarshal-only", func() error {
			var w struct {
				V        *int              `json:"v"`
				Addr     string            `json:"addr"`
				Weight   int               `json:"weight"`
				Status   roster.Status     `json:"status"`
				Metadata map[string]string `json:"metadata"`
			}
			return json.Unmarshal(value, &w)
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// stdEncode is how EncodeInstance encodes, for the benchmark.
func stdEncode(i roster.Instance) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		V        int               `json:"v"`
		Addr     string            `json:"addr"`
		Weight   int               `json:"weight,omitempty"`
		Status   roster.Status     `json:"status,omitempty"`
		Metadata map[string]string `json:"metadata,omitempty"`
	}{roster.ValueVersion, i.Addr, i.Weight, i.Status, i.Metadata})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// handEncode is the hand-written encoder EncodeInstance used before it
// moved to encoding/json, kept to measure the difference.
func handEncode(dst []byte, i roster.Instance) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, roster.ValueVersion, 10)
	dst = append(dst, `,"addr":`...)
	dst = handString(dst, i.Addr)
	if i.Weight != 0 {
		dst = append(dst, `,"weight":`...)
		dst = strconv.AppendInt(dst, int64(i.Weight), 10)
	}
	if i.Status != "" {
		dst = append(dst, `,"status":`...)
		dst = handString(dst, string(i.Status))
	}
	if len(i.Metadata) > 0 {
		dst = append(dst, `,"metadata":{`...)
		for n, k := range slices.Sorted(maps.Keys(i.Metadata)) {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = handString(dst, k)
			dst = append(dst, ':')
			dst = handString(dst, i.Metadata[k])
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func handString(dst []byte, s string) []byte {
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
