package etcdtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// BinaryEnv names the environment variable that points at a prebuilt
// roster-etcd binary; without it, the binary is built once per test process
// from the embedded module next to this package.
const BinaryEnv = "ROSTER_ETCD_BIN"

var built struct {
	once sync.Once
	dir  string // temporary directory of a binary built here
	path string
	err  error
}

// Binary returns the roster-etcd binary the members run.
func Binary() (string, error) {
	built.once.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			built.path = p
			return
		}
		built.path, built.err = build()
	})
	return built.path, built.err
}

// build compiles roster-etcd from the embedded module of this source tree.
func build() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("etcdtest: cannot locate the source tree; set %s", BinaryEnv)
	}
	module := filepath.Join(filepath.Dir(file), "..", "..", "embedded")
	if _, err := os.Stat(filepath.Join(module, "go.mod")); err != nil {
		return "", fmt.Errorf("etcdtest: no embedded module at %s to build roster-etcd from; set %s: %w", module, BinaryEnv, err)
	}
	dir, err := os.MkdirTemp("", "roster-etcd-bin-*")
	if err != nil {
		return "", fmt.Errorf("etcdtest: %w", err)
	}
	bin := filepath.Join(dir, "roster-etcd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/roster-etcd")
	cmd.Dir = module
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("etcdtest: build roster-etcd: %w\n%s", err, out)
	}
	built.dir = dir
	return bin, nil
}

// removeBinary deletes a binary built by this process.
func removeBinary() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}
