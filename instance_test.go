package roster_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
)

// validInstance returns an instance that passes Validate, for tests to
// break one field at a time.
func validInstance() roster.Instance {
	return roster.Instance{
		Service:  "checkout",
		ID:       "pod-7",
		Addr:     "10.0.0.7:8080",
		Metadata: map[string]string{"zone": "eu-1"},
		Weight:   5,
		Status:   roster.StatusServing,
	}
}

func TestInstanceValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*roster.Instance)
	}{
		{"as built", func(*roster.Instance) {}},
		{"zero weight", func(i *roster.Instance) { i.Weight = 0 }},
		{"max weight", func(i *roster.Instance) { i.Weight = roster.MaxWeight }},
		{"empty status", func(i *roster.Instance) { i.Status = "" }},
		{"draining", func(i *roster.Instance) { i.Status = roster.StatusDraining }},
		{"nil metadata", func(i *roster.Instance) { i.Metadata = nil }},
		{"empty metadata", func(i *roster.Instance) { i.Metadata = map[string]string{} }},
		{"host name", func(i *roster.Instance) { i.Addr = "checkout.internal:443" }},
		{"IPv6", func(i *roster.Instance) { i.Addr = "[::1]:1" }},
		{"IPv6 zone", func(i *roster.Instance) { i.Addr = "[fe80::1%eth0]:65535" }},
		{"longest addr", func(i *roster.Instance) {
			i.Addr = strings.Repeat("h", roster.MaxAddrLen-3) + ":80"
		}},
		{"empty metadata value", func(i *roster.Instance) { i.Metadata = map[string]string{"k": ""} }},
		{"metadata key with space", func(i *roster.Instance) { i.Metadata = map[string]string{"build id": "x"} }},
		{"non-ASCII metadata", func(i *roster.Instance) { i.Metadata = map[string]string{"r\u00e9gion": "\u6771\u4eac"} }},
		{"control bytes in metadata value", func(i *roster.Instance) { i.Metadata = map[string]string{"k": "a\x00\n\t"} }},
		{"longest metadata key and value", func(i *roster.Instance) {
			i.Metadata = map[string]string{
				strings.Repeat("k", roster.MaxMetadataKeyLen): strings.Repeat("v", roster.MaxMetadataValueLen),
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := validInstance()
			tt.mutate(&inst)
			assert.NoError(t, inst.Validate())
		})
	}
}

func TestInstanceValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*roster.Instance)
		want   error
		msg    string
	}{
		{"empty service", func(i *roster.Instance) { i.Service = "" }, roster.ErrInvalidName, `service "": empty`},
		{"service with slash", func(i *roster.Instance) { i.Service = "a/b" }, roster.ErrInvalidName, `service "a/b": contains '/'`},
		{"empty ID", func(i *roster.Instance) { i.ID = "" }, roster.ErrInvalidName, `instance ID "": empty`},
		{"ID with space", func(i *roster.Instance) { i.ID = "pod 7" }, roster.ErrInvalidName, `instance ID "pod 7"`},

		{"empty addr", func(i *roster.Instance) { i.Addr = "" }, roster.ErrInvalidAddress, `"": want host:port`},
		{"no port", func(i *roster.Instance) { i.Addr = "10.0.0.7" }, roster.ErrInvalidAddress, `"10.0.0.7": want host:port`},
		{"empty host", func(i *roster.Instance) { i.Addr = ":80" }, roster.ErrInvalidAddress, `":80": empty host`},
		{"empty port", func(i *roster.Instance) { i.Addr = "h:" }, roster.ErrInvalidAddress, `port ""`},
		{"port zero", func(i *roster.Instance) { i.Addr = "h:0" }, roster.ErrInvalidAddress, `port "0": want a number in 1..65535`},
		{"port too big", func(i *roster.Instance) { i.Addr = "h:65536" }, roster.ErrInvalidAddress, `port "65536"`},
		{"negative port", func(i *roster.Instance) { i.Addr = "h:-1" }, roster.ErrInvalidAddress, `port "-1"`},
		{"named port", func(i *roster.Instance) { i.Addr = "h:http" }, roster.ErrInvalidAddress, `port "http"`},
		{"unbracketed IPv6", func(i *roster.Instance) { i.Addr = "::1:80" }, roster.ErrInvalidAddress, "want host:port"},
		{"space", func(i *roster.Instance) { i.Addr = "h: 80" }, roster.ErrInvalidAddress, "contains byte 0x20"},
		{"newline", func(i *roster.Instance) { i.Addr = "h:80\n" }, roster.ErrInvalidAddress, "contains byte 0x0a"},
		{"non-ASCII host", func(i *roster.Instance) { i.Addr = "b\u00fccher.example:80" }, roster.ErrInvalidAddress, "contains byte 0xc3"},
		{"scheme", func(i *roster.Instance) { i.Addr = "http://h:80" }, roster.ErrInvalidAddress, "want host:port"},
		{"too long", func(i *roster.Instance) {
			i.Addr = strings.Repeat("h", roster.MaxAddrLen-2) + ":80"
		}, roster.ErrInvalidAddress, "longer than 512 bytes"},

		{"negative weight", func(i *roster.Instance) { i.Weight = -1 }, roster.ErrInvalidInstance, "weight -1: outside 0..10000"},
		{"weight too big", func(i *roster.Instance) { i.Weight = roster.MaxWeight + 1 }, roster.ErrInvalidInstance, "weight 10001"},
		{"unknown status", func(i *roster.Instance) { i.Status = "down" }, roster.ErrInvalidInstance, `status "down": want "serving" or "draining"`},
		{"status case", func(i *roster.Instance) { i.Status = "Serving" }, roster.ErrInvalidInstance, `status "Serving"`},

		{"empty metadata key", func(i *roster.Instance) { i.Metadata = map[string]string{"": "x"} }, roster.ErrInvalidMetadata, `key "": empty key`},
		{"long metadata key", func(i *roster.Instance) {
			i.Metadata = map[string]string{strings.Repeat("k", roster.MaxMetadataKeyLen+1): ""}
		}, roster.ErrInvalidMetadata, "key longer than 128 bytes"},
		{"control byte in key", func(i *roster.Instance) { i.Metadata = map[string]string{"a\nb": ""} }, roster.ErrInvalidMetadata, `key "a\nb": key contains non-printable U+000A`},
		{"format rune in key", func(i *roster.Instance) { i.Metadata = map[string]string{"a\u200bb": ""} }, roster.ErrInvalidMetadata, "non-printable U+200B"},
		{"invalid UTF-8 key", func(i *roster.Instance) { i.Metadata = map[string]string{"a\xff": ""} }, roster.ErrInvalidMetadata, "key is not valid UTF-8"},
		{"long metadata value", func(i *roster.Instance) {
			i.Metadata = map[string]string{"k": strings.Repeat("v", roster.MaxMetadataValueLen+1)}
		}, roster.ErrInvalidMetadata, `key "k": value longer than 1024 bytes`},
		{"invalid UTF-8 value", func(i *roster.Instance) { i.Metadata = map[string]string{"k": "\xc3"} }, roster.ErrInvalidMetadata, "value is not valid UTF-8"},
		{"value too large in total", func(i *roster.Instance) {
			i.Metadata = bigMetadata(roster.MaxValueSize)
		}, roster.ErrInvalidMetadata, "more than 16384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := validInstance()
			tt.mutate(&inst)
			err := inst.Validate()
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "roster: "), err.Error())

			// EncodeInstance enforces exactly the same rules.
			b, encErr := roster.EncodeInstance(inst)
			assert.Nil(t, b)
			assert.Equal(t, err, encErr)
		})
	}
}

// bigMetadata returns metadata whose values alone add up to more than n
// bytes, while each entry is within the per-entry limits.
func bigMetadata(n int) map[string]string {
	md := map[string]string{}
	for i := 0; n >= 0; i++ {
		md["k"+strconv.Itoa(i)] = strings.Repeat("v", roster.MaxMetadataValueLen)
		n -= roster.MaxMetadataValueLen
	}
	return md
}

func TestInstanceValidateSizeLimitIsExact(t *testing.T) {
	inst := validInstance()
	inst.Metadata = bigMetadata(roster.MaxValueSize)
	require.ErrorIs(t, inst.Validate(), roster.ErrInvalidMetadata)

	// Each byte trimmed from a value shortens the encoding by one byte, so
	// the first instance that passes encodes to exactly MaxValueSize.
	var last string
	for k, v := range inst.Metadata {
		for len(v) > 0 && inst.Validate() != nil {
			v = v[1:]
			inst.Metadata[k] = v
			last = k
		}
	}
	b, err := roster.EncodeInstance(inst)
	require.NoError(t, err)
	require.Len(t, b, roster.MaxValueSize)

	inst.Metadata[last] += "v"
	err = inst.Validate()
	require.ErrorIs(t, err, roster.ErrInvalidMetadata)
	assert.Contains(t, err.Error(), "encoded value is 16385 bytes")
}

func TestInstanceValidateReportsSmallestBadMetadataKey(t *testing.T) {
	inst := validInstance()
	inst.Metadata = map[string]string{"ok": "", "b\x00": "", "a\x00": "", "c\x00": "", "": "x", "d": "\xff"}
	for range 20 {
		err := inst.Validate()
		require.ErrorIs(t, err, roster.ErrInvalidMetadata)
		assert.Equal(t, `roster: invalid metadata: key "": empty key`, err.Error())
	}
}

func TestEffectiveWeight(t *testing.T) {
	for weight, want := range map[int]int{-5: 1, 0: 1, 1: 1, 7: 7, roster.MaxWeight: roster.MaxWeight} {
		assert.Equal(t, want, roster.Instance{Weight: weight}.EffectiveWeight(), "weight %d", weight)
	}
}

func TestServing(t *testing.T) {
	for status, want := range map[roster.Status]bool{
		"":                    true,
		roster.StatusServing:  true,
		roster.StatusDraining: false,
		"down":                false,
	} {
		assert.Equal(t, want, roster.Instance{Status: status}.Serving(), "status %q", status)
	}
}

func ExampleInstance_Validate() {
	inst := roster.Instance{Service: "checkout", ID: "pod-7", Addr: "10.0.0.7"}
	err := inst.Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, roster.ErrInvalidAddress))
	// Output:
	// roster: invalid address: "10.0.0.7": want host:port
	// true
}
