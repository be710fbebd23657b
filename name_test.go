package roster_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
)

func TestValidateNameAccepts(t *testing.T) {
	for _, name := range []string{
		"a",
		"user",
		"user-admin",
		"A_b.c~1",
		"...",
		".hidden",
		"a..b",
		"!#$%&'()*+,-:;<=>?@[]^`{|}~\"\\",
		strings.Repeat("x", roster.MaxNameLen),
	} {
		assert.NoError(t, roster.ValidateName("service", name), "%q", name)
	}
}

func TestValidateNameRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", `roster: invalid name: service "": empty`},
		{"too long", strings.Repeat("x", roster.MaxNameLen+1), "longer than 128 bytes"},
		{"dot", ".", `service ".": reserved`},
		{"dot dot", "..", `service "..": reserved`},
		{"slash", "a/b", `roster: invalid name: service "a/b": contains '/'`},
		{"leading slash", "/a", "contains '/'"},
		{"trailing slash", "a/", "contains '/'"},
		{"space", "a b", "contains a space"},
		{"tab", "a\tb", "contains byte 0x09 at offset 1"},
		{"newline", "a\n", "contains byte 0x0a at offset 1"},
		{"nul", "\x00", "contains byte 0x00 at offset 0"},
		{"del", "a\x7f", "contains byte 0x7f"},
		{"non-ASCII", "caf\u00e9", "contains byte 0xc3 at offset 3"},
		{"invalid UTF-8", "a\xff", "contains byte 0xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := roster.ValidateName("service", tt.in)
			require.ErrorIs(t, err, roster.ErrInvalidName)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestValidateNameNamesTheKind(t *testing.T) {
	err := roster.ValidateName("instance ID", "a b")
	require.Error(t, err)
	assert.Equal(t, `roster: invalid name: instance ID "a b": contains a space`, err.Error())
}

func TestValidateNameClipsHugeInputInErrors(t *testing.T) {
	err := roster.ValidateName("service", strings.Repeat("x", 1<<20))
	require.ErrorIs(t, err, roster.ErrInvalidName)
	assert.Less(t, len(err.Error()), 200)
}
