package election_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/lock"
)

const pausedTTL = 2 * time.Second

// leaderAndHolder leads the election "paused" and holds the mutex "paused",
// then writes under both, fenced, until it knows it lost both. It says what
// it does, one line each: "ready", "send <what> <n>", "result <what> <n>
// <ok|local|etcd|error>" (local: refused without being sent, etcd: sent and
// refused by etcd) and "lost <what> <err>".
var leaderAndHolder = etcdtest.Role("leader-and-holder", func(args []string, _ *bufio.Scanner, out io.Writer) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: args, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx := context.Background()
	e, err := election.New(cli, "paused", election.WithTTL(pausedTTL))
	if err != nil {
		return err
	}
	defer e.Close()
	mu, err := lock.NewMutex(cli, "paused", lock.WithTTL(pausedTTL))
	if err != nil {
		return err
	}
	defer mu.Close()
	l, err := e.Campaign(ctx, "child")
	if err != nil {
		return err
	}
	h, err := mu.Lock(ctx)
	if err != nil {
		return err
	}
	type handle struct {
		what string
		done func() <-chan struct{}
		err  func() error
		do   func(context.Context, ...clientv3.Op) (*clientv3.TxnResponse, error)
		lost bool
	}
	handles := []*handle{{"leader", l.Done, l.Err, l.Do, false}, {"holder", h.Done, h.Err, h.Do, false}}
	var mu2 sync.Mutex
	say := func(format string, a ...any) {
		mu2.Lock()
		defer mu2.Unlock()
		fmt.Fprintf(out, format+"\n", a...)
	}
	say("ready")
	for n := 0; ; n++ {
		left := 0
		for _, hd := range handles {
			if hd.lost {
				continue
			}
			select {
			case <-hd.done():
				hd.lost = true
				say("lost %s %v", hd.what, hd.err())
				continue
			default:
			}
			left++
			say("send %s %d", hd.what, n)
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := hd.do(wctx, clientv3.OpPut("/paused/"+hd.what, fmt.Sprintf("child-%d", n)))
			cancel()
			result := "ok"
			switch {
			case err == nil:
			case errors.Is(err, roster.ErrLost):
				result = "local" // refused by the fence itself: the loss was known
			case errors.Is(err, election.ErrNotLeader), errors.Is(err, lock.ErrNotHeld):
				result = "etcd"
			default:
				result = "error"
			}
			say("result %s %d %s", hd.what, n, result)
		}
		if left == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // the workload's pace
	}
})

type line struct {
	at   time.Time
	text string
}

// A process that leads and holds a lock is stopped (SIGSTOP) past its TTL,
// as a GC pause or a stopped VM would stop it, and resumed after others took
// over. None of its fenced writes lands after the others took over; every
// write it starts after resuming is refused before it is sent, and it
// reports both losses at once.
func TestPausedProcessLearnsItLostBeforeItWrites(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	m := etcdtest.Start(t)
	cli := m.Client()
	ctx := testCtx(t)
	child := etcdtest.StartChild(t, leaderAndHolder, m.Endpoints()...)
	var (
		mu    sync.Mutex
		lines []line
	)
	read := make(chan struct{})
	go func() {
		defer close(read)
		for l := range child.Lines() {
			mu.Lock()
			lines = append(lines, line{time.Now(), l})
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { child.Kill(); <-read })
	require.Eventually(t, func() bool { return has(&mu, &lines, "ready") }, 20*time.Second, 10*time.Millisecond)

	// The others, in this process, wait behind the child.
	e := newElection(t, cli, "paused", election.WithTTL(pausedTTL))
	mx := newMutex(t, cli, "paused")
	leaderToken, holderToken := make(chan int64, 1), make(chan int64, 1)
	go func() {
		if l, err := e.Campaign(ctx, "other"); err == nil {
			_, _ = l.Do(ctx, clientv3.OpPut("/paused/leader", "other"))
			leaderToken <- l.Token()
		}
	}()
	go func() {
		if h, err := mx.Lock(ctx); err == nil {
			_, _ = h.Do(ctx, clientv3.OpPut("/paused/holder", "other"))
			holderToken <- h.Token()
		}
	}()
	awaitCandidates(t, cli, "paused", 2)

	child.Pause()
	paused := time.Now()
	tokens := map[string]int64{
		"/paused/leader": receive(t, leaderToken, 3*pausedTTL, "another leader"),
		"/paused/holder": receive(t, holderToken, 3*pausedTTL, "another holder"),
	}
	resumed := time.Now()
	child.Resume()
	t.Logf("paused %v; the others took over while it was stopped", resumed.Sub(paused).Round(time.Millisecond))

	require.Eventually(t, func() bool { return has(&mu, &lines, "lost leader") && has(&mu, &lines, "lost holder") },
		time.Second, 5*time.Millisecond, "the resumed process reports both losses within a second")
	mu.Lock()
	after := map[string]bool{} // writes whose send came after the resume
	refused := 0
	for _, l := range lines {
		f := strings.Fields(l.text)
		switch {
		case !l.at.After(resumed):
		case f[0] == "send":
			after[f[1]+" "+f[2]] = true
		case f[0] == "result" && after[f[1]+" "+f[2]]:
			require.Equal(t, "local", f[3], "a write started after the resume must be refused before it is sent: %q", l.text)
			refused++
		}
	}
	mu.Unlock()
	t.Logf("writes started after the resume, all refused before being sent: %d", refused)

	// etcd's own record: no write of the child's landed under the new
	// leadership or hold, whose keys were created after the child's went.
	now, err := cli.Get(ctx, "/paused/", clientv3.WithPrefix())
	require.NoError(t, err)
	w := cli.Watch(ctx, "/paused/", clientv3.WithPrefix(), clientv3.WithRev(min(tokens["/paused/leader"], tokens["/paused/holder"])))
	for seen := int64(0); seen < now.Header.Revision; {
		wr := <-w
		require.NoError(t, wr.Err())
		for _, ev := range wr.Events {
			seen = max(seen, ev.Kv.ModRevision)
			if strings.HasPrefix(string(ev.Kv.Value), "child-") {
				require.Less(t, ev.Kv.ModRevision, tokens[string(ev.Kv.Key)],
					"the child's write %s=%s landed after the take-over", ev.Kv.Key, ev.Kv.Value)
			}
		}
		seen = max(seen, wr.Header.Revision)
	}
}

func has(mu *sync.Mutex, lines *[]line, prefix string) bool {
	mu.Lock()
	defer mu.Unlock()
	for _, l := range *lines {
		if strings.HasPrefix(l.text, prefix) {
			return true
		}
	}
	return false
}

func newMutex(t *testing.T, cli *clientv3.Client, name string) *lock.Mutex {
	t.Helper()
	m, err := lock.NewMutex(cli, name, lock.WithTTL(pausedTTL))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}
