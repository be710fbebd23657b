package embedded_test

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// TestBenchStartClose measures Start and Close of one member with a client
// holding a watch and a keep-alive stream open, against etcd's embed package
// used directly in the same run. Run with ROSTER_BENCH=1.
func TestBenchStartClose(t *testing.T) {
	if os.Getenv("ROSTER_BENCH") != "1" {
		t.Skip("set ROSTER_BENCH=1 to measure")
	}
	const rounds = 3
	// Warm-up: the first member in a process pays for one-time set-up.
	measure(t, startRaw)
	var ours, raw [2]time.Duration // start, close
	for range rounds {
		s, c := measure(t, startEmbedded)
		ours[0], ours[1] = ours[0]+s, ours[1]+c
		s, c = measure(t, startRaw)
		raw[0], raw[1] = raw[0]+s, raw[1]+c
	}
	for i, what := range []string{"Start (ready to serve)", "Close with an open watch and keep-alive"} {
		t.Logf("%s: embedded %v, raw embed %v, ratio %.3f", what,
			ours[i]/rounds, raw[i]/rounds, float64(ours[i])/float64(raw[i]))
	}
}

// member is what measure needs of either kind of member.
type member struct {
	endpoint string
	close    func()
}

func measure(t *testing.T, start func(*testing.T, context.Context) member) (startTook, closeTook time.Duration) {
	ctx := ctxT(t, 60*time.Second)
	t0 := time.Now()
	m := start(t, ctx)
	startTook = time.Since(t0)

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.endpoint}, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := cli.Watch(wctx, "k", clientv3.WithCreatedNotify())
	<-wch
	lease, err := cli.Grant(ctx, 10)
	require.NoError(t, err)
	kch, err := cli.KeepAlive(wctx, lease.ID)
	require.NoError(t, err)
	<-kch

	t1 := time.Now()
	m.close()
	return startTook, time.Since(t1)
}

func startEmbedded(t *testing.T, ctx context.Context) member {
	s, err := embedded.Start(ctx)
	require.NoError(t, err)
	return member{endpoint: s.Endpoints()[0], close: func() { s.Close() }}
}

func startRaw(t *testing.T, ctx context.Context) member {
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.Logger, cfg.LogLevel = "zap", "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, peer := mustParse(t, "http://"+etcdtest.FreeAddr(t)), mustParse(t, "http://"+etcdtest.FreeAddr(t))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	require.NoError(t, err)
	select {
	case <-e.Server.ReadyNotify():
	case <-ctx.Done():
		e.Close()
		t.Fatal("raw etcd not ready")
	}
	return member{endpoint: client.String(), close: e.Close}
}

func mustParse(t *testing.T, s string) url.URL {
	u, err := url.Parse(s)
	require.NoError(t, err)
	return *u
}

// TestBenchPolicyCost measures sequential writes on a member running the
// defragmentation policy (looking every 100 ms) against one without it, in
// rounds taken in turn. Nothing is due: this is what the looking costs. Run
// with ROSTER_BENCH=1.
func TestBenchPolicyCost(t *testing.T) {
	if os.Getenv("ROSTER_BENCH") != "1" {
		t.Skip("set ROSTER_BENCH=1 to measure")
	}
	ctx := ctxT(t, 120*time.Second)
	on := embeddedtest.Start(t, embedded.WithDefragPolicy(embedded.DefragPolicy{CheckInterval: 100 * time.Millisecond}))
	off := embeddedtest.Start(t, embedded.WithDefragPolicy(embedded.DefragPolicy{Disabled: true}))
	clis := []*clientv3.Client{on.Client(), off.Client()}
	const rounds, perRound = 10, 300
	var took [2]time.Duration
	for r := range rounds {
		for i, cli := range clis {
			start := time.Now()
			for j := range perRound {
				_, err := cli.Put(ctx, "k", strconv.Itoa(r*perRound+j))
				require.NoError(t, err)
			}
			if r > 0 { // the first round warms up
				took[i] += time.Since(start)
			}
		}
	}
	n := time.Duration((rounds - 1) * perRound)
	t.Logf("sequential Put: policy on %v, off %v, ratio %.3f", took[0]/n, took[1]/n, float64(took[0])/float64(took[1]))
}
