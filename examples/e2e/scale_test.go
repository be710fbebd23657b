package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// procCPU returns the CPU time a process used so far (user + system).
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // clock ticks of 1/100 s
}

// procRSS returns a process's resident memory, in bytes.
func procRSS(t *testing.T, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// heapInUse collects the gateway's garbage, then reads its heap in use
// from its /metrics.
func heapInUse(t *testing.T, base, pprof string) float64 {
	resp, err := http.Get("http://" + pprof + "/debug/pprof/heap?gc=1")
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	v, ok := value(scrape(t, base+"/metrics"), "go_memstats_heap_inuse_bytes", nil)
	require.True(t, ok)
	return v
}

// timeGet returns how long a GET takes, its body read.
func timeGet(t *testing.T, url string) (time.Duration, int) {
	began := time.Now()
	resp, err := http.Get(url)
	require.NoError(t, err)
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	return time.Since(began), int(n)
}

// timeFirstEvent returns how long the live page's stream takes to send
// its first status: what the page waits for before it draws.
func timeFirstEvent(t *testing.T, url string) (time.Duration, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	line, err := bufio.NewReaderSize(resp.Body, 1<<20).ReadString('\n')
	require.NoError(t, err)
	return time.Since(began), len(line)
}

type scaleRun struct {
	services, perService int
	follow               time.Duration // registration of all to all routed
	heapPerInstance      float64
	rssPerInstance       float64
	cpuPerChange         time.Duration
	changes              int
	status, statusAll    time.Duration
	statusBytes, allB    int
	page                 time.Duration
	eventBytes           int
}

// runScale starts a gateway, registers services × perService instances
// with 8 registrars, and measures what following them costs it.
func runScale(t *testing.T, services, perService int) scaleRun {
	gw, wk := build(t)
	pprof := etcdtest.FreeAddr(t)
	// etcd runs in a process of its own, so that the gateway's CPU and
	// memory are the gateway's alone.
	m := etcdtest.Start(t)
	d := &demo{t: t, gw: gw, wk: wk, etcdAddr: m.Endpoints()[0], httpAddr: etcdtest.FreeAddr(t),
		workers: map[string]*proc{}, pollEvery: 250 * time.Millisecond}
	d.gateway = start(t, "gateway", gw, "-listen", d.httpAddr, "-etcd", d.etcdAddr, "-pprof", pprof)
	d.gateway.await(`gateway serving at`, 60*time.Second)
	pid := d.gateway.cmd.Process.Pid
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{d.etcdAddr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()

	run := scaleRun{services: services, perService: perService}
	heap0, rss0 := heapInUse(t, d.base(), pprof), procRSS(t, pid)

	const writers = 8
	regs := make([]*registry.Registrar, writers)
	for i := range regs {
		regs[i], err = registry.New(cli, registry.WithTTL(30*time.Second))
		require.NoError(t, err)
	}
	closeRegs := func() {
		for _, r := range regs {
			require.NoError(t, r.Close())
		}
	}
	type inst struct{ s, i int }
	work := make(chan inst)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	began := time.Now()
	for w := range writers {
		wg.Go(func() {
			for in := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := regs[w].Register(ctx, roster.Instance{Service: fmt.Sprintf("svc-%04d", in.s), ID: fmt.Sprintf("i-%02d", in.i),
					Addr: fmt.Sprintf("127.0.0.1:%d", 10000+in.i), Metadata: map[string]string{"zone": "z" + strconv.Itoa(in.i%3)}})
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for s := range services {
		for i := range perService {
			work <- inst{s: s, i: i}
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	registered := time.Since(began)
	total := services * perService
	d.waitStatus(5*time.Minute, "every instance routed", func(st gatewayStatus) bool {
		return len(st.Services) == services && st.instanceCount() == total
	})
	run.follow = time.Since(began)
	t.Logf("%d services × %d instances registered in %v; routed by the gateway %v after the first registration",
		services, perService, registered.Round(time.Millisecond), run.follow.Round(time.Millisecond))

	heap1, rss1 := heapInUse(t, d.base(), pprof), procRSS(t, pid)
	run.heapPerInstance = (heap1 - heap0) / float64(total)
	run.rssPerInstance = float64(rss1-rss0) / float64(total)
	t.Logf("memory: heap in use %.1f MB → %.1f MB, RSS %.1f MB → %.1f MB", heap0/1e6, heap1/1e6, float64(rss0)/1e6, float64(rss1)/1e6)

	// CPU per change: drain one instance of every service (one registrar
	// each way), in rounds, against the gateway's idle CPU over as long.
	idle0 := procCPU(t, pid)
	idleFrom := time.Now()
	time.Sleep(3 * time.Second) // measuring idle CPU over a known span; not a synchronization
	idle := procCPU(t, pid) - idle0
	idleSpan := time.Since(idleFrom)
	// What one status request costs the gateway, to take out the polls
	// that tell when the changes are all seen.
	st0 := procCPU(t, pid)
	stFrom := time.Now()
	for range 20 {
		timeGet(t, d.base()+"/_roster/status")
	}
	perPoll := (procCPU(t, pid) - st0 - time.Duration(float64(idle)*time.Since(stFrom).Seconds()/idleSpan.Seconds())) / 20

	drain := map[string]bool{} // service/id of the instances to drain
	for i := 0; i < perService && len(drain) < 1000; i++ {
		for s := 0; s < services && len(drain) < 1000; s++ {
			drain[fmt.Sprintf("svc-%04d/i-%02d", s, i)] = true
		}
	}
	cpu0 := procCPU(t, pid)
	began = time.Now()
	var cwg sync.WaitGroup
	for w := range writers {
		cwg.Go(func() {
			for _, r := range regs[w].Instances() {
				if drain[r.Service+"/"+r.ID] {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					err := regs[w].Drain(ctx, r.Service, r.ID)
					cancel()
					if err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	cwg.Wait()
	polls := d.polls
	d.waitStatus(2*time.Minute, "every drain seen", func(st gatewayStatus) bool { return st.drainingCount() == len(drain) })
	took := time.Since(began)
	polls = d.polls - polls
	cpu := procCPU(t, pid) - cpu0 - time.Duration(float64(idle)*took.Seconds()/idleSpan.Seconds()) - time.Duration(polls)*perPoll
	run.changes = len(drain)
	run.cpuPerChange = cpu / time.Duration(len(drain))
	t.Logf("%d changes (drains) seen in %v; gateway CPU %v beyond idle (%v per %v idle) and %d status polls (%v each): %v per change",
		len(drain), took.Round(time.Millisecond), cpu.Round(time.Millisecond), idle, idleSpan.Round(time.Millisecond), polls, perPoll.Round(time.Microsecond), run.cpuPerChange.Round(time.Microsecond))

	// Responsiveness of the status: the JSON (instances listed only for a
	// few services past 300), the full JSON, and the live page's first
	// update, each the best of three.
	best := func(f func() (time.Duration, int)) (time.Duration, int) {
		var b time.Duration
		var n int
		for k := range 3 {
			d, size := f()
			if k == 0 || d < b {
				b, n = d, size
			}
		}
		return b, n
	}
	run.status, run.statusBytes = best(func() (time.Duration, int) { return timeGet(t, d.base()+"/_roster/status") })
	run.statusAll, run.allB = best(func() (time.Duration, int) { return timeGet(t, d.base()+"/_roster/status?detail=all") })
	run.page, run.eventBytes = best(func() (time.Duration, int) {
		p, _ := timeGet(t, d.base()+"/_roster/")
		a, _ := timeGet(t, d.base()+"/_roster/app.js")
		e, n := timeFirstEvent(t, d.base()+"/_roster/events")
		return p + a + e, n
	})
	t.Logf("status JSON %v (%d bytes); with every instance %v (%d bytes); page + script + first live update %v (%d bytes)",
		run.status, run.statusBytes, run.statusAll, run.allB, run.page, run.eventBytes)
	closeRegs()
	stopped := time.Now()
	require.Zero(t, d.gateway.stop(60*time.Second))
	t.Logf("gateway stopped in %v", time.Since(stopped).Round(time.Millisecond))
	return run
}

func (s gatewayStatus) instanceCount() int {
	n := 0
	for _, svc := range s.Services {
		n += svc.InstanceCount
	}
	return n
}

func (s gatewayStatus) drainingCount() int {
	n := 0
	for _, svc := range s.Services {
		n += svc.Draining
	}
	return n
}

// The gateway following 1,000 services × 10 instances, registered with the
// SDK, against the same gateway following 10 × 10 in the same run: memory
// per instance, CPU per change, and how fast the status and the page answer.
// It takes a few minutes:
//
//	ROSTER_BENCH=1 go test -run GatewayFollowsManyServices -v ./examples/e2e
func TestGatewayFollowsManyServices(t *testing.T) {
	if os.Getenv("ROSTER_BENCH") == "" {
		t.Skip("set ROSTER_BENCH=1 to measure the gateway following 1,000 services")
	}
	small := runScale(t, 10, 10)
	large := runScale(t, 1000, 10)
	t.Logf("| services × instances | routed after | heap / instance | RSS / instance | CPU / change | /_roster/status | ?detail=all | page + first update |")
	for _, r := range []scaleRun{small, large} {
		t.Logf("| %d × %d | %v | %.0f B | %.0f B | %v | %v (%d kB) | %v (%d kB) | %v |", r.services, r.perService,
			r.follow.Round(time.Millisecond), r.heapPerInstance, r.rssPerInstance, r.cpuPerChange.Round(time.Microsecond),
			r.status.Round(time.Millisecond), r.statusBytes>>10, r.statusAll.Round(time.Millisecond), r.allB>>10, r.page.Round(time.Millisecond))
	}
	t.Logf("CPU per change at 1,000 × 10 vs 10 × 10: %.2fx", float64(large.cpuPerChange)/float64(small.cpuPerChange))
}
