package roster_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/rosterkit/roster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSentinelsArePrefixedAndDistinct(t *testing.T) {
	sentinels := []error{
		roster.ErrInvalidName,
		roster.ErrInvalidAddress,
		roster.ErrInvalidMetadata,
		roster.ErrInvalidInstance,
		roster.ErrInvalidValue,
		roster.ErrUnsupportedVersion,
		roster.ErrLost,
		roster.ErrClosed,
		roster.ErrStale,
		roster.ErrNilClient,
		roster.ErrInvalidOption,
	}
	for i, a := range sentinels {
		assert.True(t, strings.HasPrefix(a.Error(), "roster: "), a.Error())
		for j, b := range sentinels {
			if i != j && a == b {
				t.Errorf("sentinels %d and %d are the same error", i, j)
			}
		}
	}
}

func TestUnsupportedVersionIsInvalidValue(t *testing.T) {
	// Callers that skip undecodable values must skip newer versions too.
	assert.True(t, errors.Is(roster.ErrUnsupportedVersion, roster.ErrInvalidValue))
	assert.False(t, errors.Is(roster.ErrInvalidValue, roster.ErrUnsupportedVersion))
}
