package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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

// seen records which requests (by their X-Req header) an upstream got.
type seen struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *seen) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]int{}
	}
	s.ids[id]++
}

func (s *seen) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// echoServer answers every request with its method and body.
func echoServer(t *testing.T, got *seen) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.add(r.Header.Get("X-Req"))
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, `{"id":"echo","method":%q,"body":%q}`, r.Method, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// hangupServer reads each request whole, then closes the connection
// without answering: the request was sent, and may have been acted on.
func hangupServer(t *testing.T, got *seen) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				got.add(req.Header.Get("X-Req"))
			})
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func register(t *testing.T, reg *registry.Registrar, service, id, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, reg.Register(ctx, roster.Instance{Service: service, ID: id, Addr: addr}))
}

func send(t *testing.T, method, url, id, body string) (int, string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Req", id)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The gateway retries on another instance a request that was never sent,
// whatever its method and with its body intact (a refused connection); and
// after a request was sent and no answer came, it retries only idempotent
// methods: a POST that may have been acted on fails with 502 instead of
// running twice.
func TestRetriesAreSafeForEveryMethod(t *testing.T) {
	d := newDemo(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{d.etcdAddr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	reg, err := registry.New(cli, registry.WithTTL(workerTTL))
	require.NoError(t, err)
	defer reg.Close()

	var good, hung seen
	// "refused": one instance registered where nothing listens.
	register(t, reg, "refused", "a-dead", etcdtest.FreeAddr(t))
	register(t, reg, "refused", "b-echo", echoServer(t, &good))
	// "hangup-post", "hangup-get": one instance that takes each request and
	// never answers (one service per method, so that round-robin's turns
	// bring each method to it).
	for _, svc := range []string{"hangup-post", "hangup-get"} {
		register(t, reg, svc, "a-hangup", hangupServer(t, &hung))
		register(t, reg, svc, "b-echo", echoServer(t, &good))
	}
	d.waitStatus(10*time.Second, "the services routed", func(st gatewayStatus) bool {
		return len(st.instances("refused")) == 2 && len(st.instances("hangup-post")) == 2 && len(st.instances("hangup-get")) == 2
	})

	// Round-robin alternates, so half of these first go to the dead
	// instance (until it is ejected after three failures): every one is
	// answered, by the echo instance, with its body.
	for i := range 6 {
		for _, m := range []string{http.MethodPost, http.MethodPatch, http.MethodGet} {
			id := fmt.Sprintf("refused-%s-%d", m, i)
			body := "payload " + id
			code, got := send(t, m, d.base()+"/svc/refused/x", id, body)
			require.Equal(t, http.StatusOK, code, "%s %s: %s", m, id, got)
			require.Contains(t, got, fmt.Sprintf(`"method":%q`, m))
			require.Contains(t, got, fmt.Sprintf(`"body":%q`, body), "the retried request carried its body")
			require.Equal(t, 1, good.count(id), "%s reached the echo instance once", id)
		}
	}

	// Sent, then no answer: a POST is not sent again; a GET is.
	var postsHung, getsHung int
	for i := range 4 {
		for _, m := range []string{http.MethodPost, http.MethodGet} {
			id := fmt.Sprintf("hangup-%s-%d", m, i)
			code, got := send(t, m, d.base()+"/svc/hangup-"+strings.ToLower(m)+"/x", id, "body "+id)
			switch {
			case hung.count(id) == 0:
				require.Equal(t, http.StatusOK, code, "%s went to the echo instance: %s", id, got)
				require.Equal(t, 1, good.count(id))
			case m == http.MethodPost:
				postsHung++
				require.Equal(t, http.StatusBadGateway, code, "%s: a POST sent and unanswered is not retried: %s", id, got)
				require.Zero(t, good.count(id), "%s was not sent a second time", id)
				require.Equal(t, 1, hung.count(id))
			default:
				getsHung++
				require.Equal(t, http.StatusOK, code, "%s: a GET sent and unanswered is retried: %s", id, got)
				require.Equal(t, 1, good.count(id), "%s retried on the echo instance", id)
			}
		}
	}
	t.Logf("refused connections: every POST, PATCH and GET retried; sent and unanswered: %d POSTs failed with 502, %d GETs retried", postsHung, getsHung)
	require.Positive(t, postsHung, "a POST met the instance that hangs up")
	require.Positive(t, getsHung, "a GET met the instance that hangs up")

	require.Zero(t, d.gateway.stop(15*time.Second))
}
