package faults

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/version"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// processCluster is a cluster of member processes: roster-etcd, or etcd's
// own server when ROSTER_ETCD_BIN points at it (scripts/external-cluster.sh
// builds it at the version this module requires). Faults are signals:
// SIGKILL to crash, SIGTERM to stop.
type processCluster struct {
	c *etcdtest.Cluster
}

func startProcesses(t *testing.T, n int) *processCluster {
	t.Helper()
	if bin := os.Getenv(etcdtest.BinaryEnv); bin != "" {
		checkVersion(t, bin)
	}
	return &processCluster{c: etcdtest.StartCluster(t, n)}
}

// checkVersion fails the test unless bin is roster-etcd or the etcd release
// this test binary links (the api, client and server modules share it), so
// an external run tests the same etcd as the embedded one.
func checkVersion(t *testing.T, bin string) {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Logf("faults: %s has no --version; taking it for roster-etcd", bin)
		return
	}
	if !strings.Contains(string(out), "etcd Version: "+version.Version+"\n") {
		t.Fatalf("faults: %s is not etcd %s:\n%s", bin, version.Version, out)
	}
	t.Logf("etcd %s from %s", version.Version, bin)
}

func (p *processCluster) Size() int             { return len(p.c.Members) }
func (p *processCluster) Endpoint(i int) string { return p.c.Members[i].Endpoints()[0] }

func (p *processCluster) Leader(t *testing.T) int {
	t.Helper()
	leader := p.c.Leader()
	for i, m := range p.c.Members {
		if m == leader {
			return i
		}
	}
	t.Fatal("faults: the leader is not a member")
	return -1
}

func (p *processCluster) Kill(t *testing.T, i int)    { p.c.Members[i].Kill() }
func (p *processCluster) Stop(t *testing.T, i int)    { p.c.Members[i].Stop() }
func (p *processCluster) Restart(t *testing.T, i int) { p.c.Members[i].Restart() }
