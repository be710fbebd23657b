package embedded_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestSingleMemberPutGetClose(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	s, err := embedded.Start(ctx)
	require.NoError(t, err)
	cli, err := s.Client()
	require.NoError(t, err)
	defer cli.Close()

	put(t, ctx, cli, "k", "v")
	requireValue(t, ctx, cli, "k", "v")
	require.NoError(t, s.Healthy(ctx))

	st := s.Status()
	require.Equal(t, s.ID(), st.ID)
	require.True(t, st.IsLeader, "a single member leads itself")
	require.Equal(t, 1, st.Members)
	require.Positive(t, st.DBSize)
	ms := s.Members()
	require.Len(t, ms, 1)
	require.Equal(t, embedded.DefaultName, ms[0].Name)
	require.Equal(t, s.Endpoints(), ms[0].ClientURLs)

	u, err := url.Parse(s.Endpoints()[0])
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", u.Hostname(), "clients listen on loopback by default")

	dir := s.DataDir()
	require.DirExists(t, dir)
	require.NoError(t, s.Close())
	require.NoDirExists(t, dir, "a temporary data dir goes with Close")
}

// TestCloseWithConnectedClients shows that open streams do not hold Close up,
// that Close frees both ports at once, and that it is idempotent and safe to
// call from several goroutines.
func TestCloseWithConnectedClients(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ctx := ctxT(t, 30*time.Second)
	s, err := embedded.Start(ctx)
	require.NoError(t, err)
	cli, err := s.Client()
	require.NoError(t, err)
	defer cli.Close()

	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := cli.Watch(wctx, "k", clientv3.WithCreatedNotify())
	select {
	case resp := <-wch:
		require.True(t, resp.Created, "watch established")
	case <-ctx.Done():
		t.Fatal("watch not established")
	}
	lease, err := cli.Grant(ctx, 10)
	require.NoError(t, err)
	kch, err := cli.KeepAlive(wctx, lease.ID)
	require.NoError(t, err)
	select {
	case ka := <-kch:
		require.NotNil(t, ka, "keep-alive stream open")
	case <-ctx.Done():
		t.Fatal("no keep-alive response")
	}

	clientAddr := hostport(t, s.Endpoints()[0])
	peerAddr := hostport(t, s.PeerURL())

	start := time.Now()
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = s.Close() })
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("Close with an open watch and keep-alive stream took %v", took)
	require.Less(t, took, 2*time.Second)
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, s.Close(), "Close is idempotent")
	require.NoError(t, s.Abort(), "Abort after Close is a no-op")
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Close")
	}

	for _, addr := range []string{clientAddr, peerAddr} {
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err, "port %s still held after Close", addr)
		l.Close()
	}

	wcancel()
	require.NoError(t, cli.Close())
	require.NoError(t, goleak.Find(before), "goroutines left after Close and the client's Close")
}

func TestParallelStartsDoNotClash(t *testing.T) {
	var seen sync.Map
	for i := range 8 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t, 60*time.Second)
			s, err := embedded.Start(ctx)
			require.NoError(t, err)
			defer s.Close()
			for _, u := range []string{s.Endpoints()[0], s.PeerURL()} {
				_, dup := seen.LoadOrStore(u, i)
				require.False(t, dup, "%s handed out twice", u)
			}
			cli, err := s.Client()
			require.NoError(t, err)
			defer cli.Close()
			put(t, ctx, cli, "k", strconv.Itoa(i))
			requireValue(t, ctx, cli, "k", strconv.Itoa(i))
		})
	}
}

func TestGivenPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	taken := l.Addr().String()

	for kind, opt := range map[string]embedded.Option{
		"client": embedded.WithClientAddr(taken),
		"peer":   embedded.WithPeerAddr(taken),
	} {
		_, err := embedded.Start(ctxT(t, 30*time.Second), opt)
		require.ErrorIs(t, err, embedded.ErrPortInUse)
		require.ErrorContains(t, err, kind+" address "+taken)
	}
}

func TestNonLoopbackNeedsTLSOrOptIn(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	for _, opt := range []embedded.Option{
		embedded.WithClientAddr("0.0.0.0:0"),
		embedded.WithPeerAddr("0.0.0.0:0"),
		embedded.WithClientAddr("[::]:0"),
	} {
		_, err := embedded.Start(ctx, opt)
		require.ErrorIs(t, err, embedded.ErrInsecureListen)
		require.ErrorContains(t, err, "WithInsecureNonLoopback", "the error says how to get past it")
	}

	s, err := embedded.Start(ctx, embedded.WithClientAddr("0.0.0.0:0"), embedded.WithInsecureNonLoopback())
	require.NoError(t, err)
	defer s.Close()
	u, err := url.Parse(s.Endpoints()[0])
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", u.Hostname(), "0.0.0.0 is served, loopback is dialled")
	cli, err := s.Client()
	require.NoError(t, err)
	defer cli.Close()
	put(t, ctx, cli, "k", "v")
}

func TestReadinessTimeout(t *testing.T) {
	// One member of a three-member static cluster cannot be ready alone.
	var members []embedded.Member
	for _, name := range []string{"a", "b", "c"} {
		members = append(members, embedded.Member{Name: name, PeerURL: "http://" + etcdtest.FreeAddr(t)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := embedded.Start(ctx, embedded.WithName("a"), embedded.WithCluster("lonely", members...))
	took := time.Since(start)
	t.Logf("start gave up after %v: %v", took, err)
	require.Nil(t, s)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "not ready")
	require.ErrorContains(t, err, "quorum")
	require.Less(t, took, 10*time.Second, "giving up is prompt")
}

func TestInvalidConfig(t *testing.T) {
	ctx := ctxT(t, 10*time.Second)
	for name, opts := range map[string][]embedded.Option{
		"empty name":     {embedded.WithName("")},
		"name with =":    {embedded.WithName("a=b")},
		"not in cluster": {embedded.WithName("x"), embedded.WithCluster("t", embedded.Member{Name: "a", PeerURL: "http://127.0.0.1:1"})},
		"bad address":    {embedded.WithClientAddr("nonsense")},
	} {
		_, err := embedded.Start(ctx, opts...)
		require.ErrorIs(t, err, embedded.ErrInvalidConfig, name)
	}
	_, err := embedded.StartCluster(ctx, 0)
	require.ErrorIs(t, err, embedded.ErrInvalidConfig)
}

// TestRestartKeepsData restarts a single member, which has no peer to catch
// up from: whatever it reads afterwards came from its data dir.
func TestRestartKeepsData(t *testing.T) {
	m := embeddedtest.Start(t)
	ctx := ctxT(t, 30*time.Second)
	cli := m.Client()
	for i := range 10 {
		put(t, ctx, cli, fmt.Sprintf("k%d", i), strconv.Itoa(i))
	}
	dir := m.Server().DataDir()
	m.Stop()
	require.DirExists(t, filepath.Join(dir, "member"), "a given data dir is kept")

	m.Restart()
	after := etcdtest.NewClient(t, m.Endpoints()...)
	for i := range 10 {
		requireValue(t, ctx, after, fmt.Sprintf("k%d", i), strconv.Itoa(i), clientv3.WithSerializable())
	}
	m.Kill()
	m.Restart()
	requireValue(t, ctx, after, "k9", "9")

	require.ErrorIs(t, m.Server().Leave(ctx), embedded.ErrLastMember)
}

func TestSlogLoggerReceivesRecords(t *testing.T) {
	h := &recordingHandler{}
	s, err := embedded.Start(ctxT(t, 30*time.Second), embedded.WithName("logged"), embedded.WithLogger(slog.New(h)))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.True(t, h.has("closed etcd server", "name", "logged"), "records: %d", h.len())
}

func TestNilLoggersDiscard(t *testing.T) {
	for _, opt := range []embedded.Option{embedded.WithLogger(nil), embedded.WithZapLogger(nil)} {
		s, err := embedded.Start(ctxT(t, 30*time.Second), opt)
		require.NoError(t, err)
		require.NoError(t, s.Close())
	}
}

func TestZapLoggerReceivesRecords(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	dir := t.TempDir()
	s, err := embedded.Start(ctxT(t, 30*time.Second), embedded.WithName("zapped"), embedded.WithZapLogger(zap.New(core)),
		embedded.WithSnapshots(embedded.SnapshotSchedule{Dir: dir, Interval: 50 * time.Millisecond}))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Status().Snapshots.Count > 0 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, s.Close())
	require.Equal(t, 1, logs.FilterMessage("closed etcd server").Len(), "etcd's records")
	taken := logs.FilterMessage("snapshot taken").All()
	require.NotEmpty(t, taken, "this package's records, through the slog bridge")
	fields := taken[0].ContextMap()
	require.Equal(t, "zapped", fields[embedded.KeyName])
	require.Equal(t, dir, filepath.Dir(fields[embedded.KeyPath].(string)))
	require.Contains(t, fields, embedded.KeyTook)
	require.Equal(t, zap.InfoLevel, taken[0].Level)
}

// ownMessages are the records this package writes: state changes only.
var ownMessages = []string{
	"member joined", "member left", "joined the cluster", "left the cluster",
	"defragmentation started", "defragmentation finished", "defragmentation failed",
	"NOSPACE alarm raised: writes are refused", "NOSPACE alarm cleared", "NOSPACE recovery started",
	"NOSPACE recovered", "NOSPACE unrecoverable: the data does not fit under the quota",
	"snapshot taken", "snapshot failed",
}

// TestLogsStateChangesOnly writes, reads, watches and renews a lease on a
// member: none of it is a state change, and this package logs nothing.
func TestLogsStateChangesOnly(t *testing.T) {
	t.Parallel()
	h := &recordingHandler{}
	m := embeddedtest.Start(t, embedded.WithLogger(slog.New(h)),
		embedded.WithDefragPolicy(embedded.DefragPolicy{CheckInterval: 50 * time.Millisecond}))
	ctx := ctxT(t, 30*time.Second)
	cli := m.Client()
	lease, err := cli.Grant(ctx, 5)
	require.NoError(t, err)
	wch := cli.Watch(ctx, "k", clientv3.WithPrefix())
	for i := range 200 {
		_, err := cli.Put(ctx, fmt.Sprintf("k%d", i%10), strconv.Itoa(i), clientv3.WithLease(lease.ID))
		require.NoError(t, err)
		<-wch
		_, err = cli.KeepAliveOnce(ctx, lease.ID)
		require.NoError(t, err)
		requireValue(t, ctx, cli, fmt.Sprintf("k%d", i%10), strconv.Itoa(i))
	}
	for _, msg := range ownMessages {
		require.Zero(t, h.count(msg), msg)
	}
}

// recordingHandler keeps the records a slog.Logger hands it, with the
// attributes of the loggers derived by With.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return withAttrs{h: h, attrs: as}
}
func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// withAttrs is a recordingHandler's child with attributes.
type withAttrs struct {
	h     *recordingHandler
	attrs []slog.Attr
}

func (w withAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (w withAttrs) WithGroup(string) slog.Handler            { return w }
func (w withAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return withAttrs{h: w.h, attrs: append(append([]slog.Attr(nil), w.attrs...), as...)}
}

func (w withAttrs) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(w.attrs...)
	return w.h.Handle(ctx, r)
}

func (h *recordingHandler) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.records)
}

// has reports whether a record with message msg carries attribute key=val.
func (h *recordingHandler) has(msg, key, val string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		found := false
		r.Attrs(func(a slog.Attr) bool {
			found = a.Key == key && a.Value.String() == val
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

func hostport(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return u.Host
}

// count is the number of records with message msg.
func (h *recordingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Message == msg {
			n++
		}
	}
	return n
}

// dump renders the records of this package (those with a "name").
func (h *recordingHandler) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, r := range h.records {
		named := false
		r.Attrs(func(a slog.Attr) bool {
			named = named || a.Key == "name"
			return true
		})
		if !named {
			continue
		}
		fmt.Fprintf(&b, "\n%s %s", r.Time.Format("15:04:05.000"), r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
	}
	return b.String()
}

// attrs are the values of key in the records with message msg, in order.
func (h *recordingHandler) attrs(msg, key string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if r.Message != msg {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				out = append(out, a.Value.String())
			}
			return true
		})
	}
	return out
}
