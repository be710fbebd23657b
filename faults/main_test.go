package faults

import (
	"testing"

	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }
