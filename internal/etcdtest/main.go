package etcdtest

import (
	"testing"

	"go.uber.org/goleak"
)

// Main runs a package's tests, then fails the package if any goroutine is
// left behind. Use it as the whole body of TestMain.
func Main(m *testing.M) {
	goleak.VerifyTestMain(m)
}
