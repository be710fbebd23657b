package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
)

// maxAttempts bounds how many instances one request may try when
// connections fail.
const maxAttempts = 3

// maxReplay is the most of a request body kept to send it again on another
// instance; a request whose attempt read more is not retried.
const maxReplay = 64 << 10

// call is one client request on its way through the gateway. It holds
// what each request needs, so that a request costs few allocations: its
// own copy of the ReverseProxy has the call as its Transport, so that the
// attempts find the call without a context value.
type call struct {
	rp      httputil.ReverseProxy
	t       *pickingTransport
	route   *route
	rest    string  // the path sent to the instance
	body    *replay // nil without a body
	rec     statusRecorder
	attempt attempt
	resp    doneBody
}

// RoundTrip runs the call's attempts.
func (c *call) RoundTrip(req *http.Request) (*http.Response, error) { return c.t.roundTrip(c, req) }

// proxy routes /svc/<service>/<rest> to an instance of <service>. The
// ReverseProxy streams bodies both ways; the call's Transport picks the
// instance for each attempt and retries on another one when that is safe.
type proxy struct {
	rt *router
	rp httputil.ReverseProxy // the template of each call's
	t  pickingTransport
	m  *metrics
}

func newProxy(rt *router, m *metrics) *proxy {
	return &proxy{rt: rt, m: m,
		rp: httputil.ReverseProxy{Rewrite: rewrite, ErrorHandler: proxyError, BufferPool: bufferPool{}},
		t:  pickingTransport{base: upstreamTransport(), m: m}}
}

// rewrite prepares the request sent on; each attempt sets the instance's
// address and the path.
func rewrite(pr *httputil.ProxyRequest) {
	pr.SetXForwarded()
	pr.Out.URL.Scheme = "http"
	pr.Out.Host = "" // the instance's own address
}

// ServeHTTP serves requests the ServeMux routed (paths to be cleaned
// first); the gateway's handler calls serve directly for clean ones.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	if !strings.HasPrefix(rest, "/") {
		rest = "/" + rest
	}
	p.serve(w, r, r.PathValue("service"), rest)
}

// svcPath splits a clean path /svc/<service>/<rest> without the ServeMux;
// ok is false for any other path, or one the ServeMux would clean.
func svcPath(path string) (service, rest string, ok bool) {
	s, found := strings.CutPrefix(path, "/svc/")
	if !found {
		return "", "", false
	}
	i := strings.IndexByte(s, '/')
	if i <= 0 || strings.Contains(path, "//") || strings.Contains(path, "/.") {
		return "", "", false
	}
	return s[:i], s[i:], true
}

func (p *proxy) serve(w http.ResponseWriter, r *http.Request, service, rest string) {
	rte, err := p.rt.forRequest(r.Context(), service)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, roster.ErrInvalidName) {
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return
	}
	c := &call{rp: p.rp, t: &p.t, route: rte, rest: rest}
	c.rp.Transport = c
	if r.Body != nil && r.Body != http.NoBody {
		c.body = &replay{src: r.Body}
		defer c.body.close()
	}
	start := time.Now()
	rte.stats.calls.inflight.Add(1)
	rec := &c.rec
	rec.ResponseWriter, rec.code, rec.service = w, http.StatusOK, service
	c.rp.ServeHTTP(rec, r)
	rte.stats.calls.inflight.Add(-1)
	if rec.code == statusClientGone {
		return
	}
	d := time.Since(start)
	rte.stats.calls.record(d, rec.code >= 500)
	p.m.requestDuration(rte, d)
}

// statusClientGone marks a request whose client went away: nobody got an
// answer, so it counts neither as served nor as failed.
const statusClientGone = 499

type statusRecorder struct {
	http.ResponseWriter
	code    int
	service string
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets streamed responses through; ReverseProxy flushes via
// http.ResponseController, which finds it through Unwrap too.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// upstreamTransport keeps enough idle connections per instance for a busy
// gateway (the default of 2 would reopen connections under any
// concurrency) and counts the bytes written on each connection, so that a
// failed attempt can tell whether any of the request left.
func upstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c}, nil
	}
	t.ForceAttemptHTTP2 = false
	return t
}

// countingConn counts the bytes written to an upstream connection.
type countingConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// attempt is one try of a request on one instance. For a method that
// must not run twice, its trace notes the connection the transport used
// and how much had been written on it, so that after a failure it can tell
// whether any byte of this request left. Idempotent methods, retried after
// any failure, go untraced: for them only a failed dial tells "not sent"
// (the transport itself retries a reused connection that wrote nothing).
type attempt struct {
	traced bool
	conn   *countingConn
	base   int64
	trace  *httptrace.ClientTrace // nil untraced
}

func (a *attempt) gotConn(info httptrace.GotConnInfo) {
	if c, ok := info.Conn.(*countingConn); ok {
		a.conn, a.base = c, c.written.Load()
	}
}

// sent reports whether any byte of the request may have reached the
// instance: a refused connection sent nothing, nor did one on which the
// failed attempt wrote nothing.
func (a *attempt) sent(err error) bool {
	if !a.traced {
		var op *net.OpError
		return !errors.As(err, &op) || op.Op != "dial"
	}
	return a.conn != nil && a.conn.written.Load() != a.base
}

// pickingTransport chooses the instance for each attempt. An attempt that
// fails is reported to the picker (feeding passive ejection) and retried on
// another instance when that cannot run the request twice: whatever the
// method when no byte of it was sent (the connection was refused, or the
// attempt wrote nothing), and for idempotent methods after any failure to
// get a response, as HTTP allows.
type pickingTransport struct {
	base http.RoundTripper
	m    *metrics
}

func (t *pickingTransport) roundTrip(c *call, req *http.Request) (*http.Response, error) {
	rte := c.route
	var tried [maxAttempts]string
	var lastErr error
	a := &c.attempt
	a.traced = !idempotent(req.Method)
	for n := 0; n < maxAttempts; n++ {
		p, err := pickUntried(rte, req, tried[:n])
		if err != nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, err
		}
		id := p.Instance.ID
		tried[n] = id
		is := rte.stats.instance(id)
		ctx := req.Context()
		if a.traced {
			// A fresh trace each attempt: WithClientTrace composes it with
			// the ReverseProxy's own.
			a.conn, a.base = nil, 0
			a.trace = &httptrace.ClientTrace{GotConn: a.gotConn}
			ctx = httptrace.WithClientTrace(ctx, a.trace)
		}
		out := req.WithContext(ctx) // RoundTrip must not change req
		u := *req.URL
		u.Host, u.Path, u.RawPath = p.Instance.Addr, c.rest, ""
		out.URL = &u
		out.GetBody = nil // retries are this transport's: on another instance
		if c.body != nil {
			out.Body = c.body.attempt()
		}
		start := time.Now()
		is.calls.inflight.Add(1)
		resp, err := t.base.RoundTrip(out)
		if err == nil {
			c.resp = doneBody{ReadCloser: resp.Body, p: p, is: is, start: start, failed: resp.StatusCode >= 500, m: t.m, route: rte}
			resp.Body = &c.resp
			return resp, nil
		}
		is.calls.inflight.Add(-1)
		if req.Context().Err() != nil {
			p.Done(nil) // the client went away: not the instance's fault
			return nil, err
		}
		p.Done(err)
		is.failed(err)
		rte.noteEjection(is)
		lastErr = fmt.Errorf("instance %s at %s: %w", id, p.Instance.Addr, err)
		reason := ""
		switch {
		case !a.sent(err):
			reason = "not_sent"
		case idempotent(req.Method):
			reason = "idempotent"
		default:
			return nil, lastErr
		}
		if c.body != nil && !c.body.rewind() {
			return nil, lastErr
		}
		if n+1 < maxAttempts {
			t.m.retried(rte, reason)
		}
	}
	return nil, lastErr
}

// pickUntried picks, preferring an instance this request has not tried yet.
func pickUntried(rte *route, req *http.Request, tried []string) (discovery.Picked, error) {
	var p discovery.Picked
	var err error
	for range 2 * maxAttempts {
		if p, err = rte.pick(req); err != nil || !contains(tried, p.Instance.ID) {
			return p, err
		}
		p.Done(nil)
	}
	return p, err
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// idempotent reports whether HTTP lets a request of this method be sent
// twice (RFC 9110, 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// doneBody ends an attempt when its response body closes, so that p2c
// counts the call as in flight while the body streams.
type doneBody struct {
	io.ReadCloser
	closed atomic.Bool
	p      discovery.Picked
	is     *instanceStats
	route  *route
	start  time.Time
	failed bool
	m      *metrics
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	if b.closed.CompareAndSwap(false, true) {
		b.p.Done(nil)
		b.is.calls.inflight.Add(-1)
		d := time.Since(b.start)
		b.is.calls.record(d, b.failed)
		b.m.upstreamDone(b.route, b.is, d, b.failed)
	}
	return err
}

// replay hands a request body to successive attempts. It keeps what the
// attempts read, up to maxReplay, so that an attempt that sent nothing can
// be followed by one that sends the same bytes.
type replay struct {
	src io.ReadCloser

	mu     sync.Mutex
	buf    []byte
	over   bool          // read past maxReplay: no replay
	srcErr error         // src's error (io.EOF at its end), once seen
	cur    *attemptBody  // the current attempt's reader
	done   chan struct{} // closed when cur is closed
}

// attempt returns the body of a new attempt, reading from the start.
func (r *replay) attempt() io.ReadCloser {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = &attemptBody{r: r}
	r.done = make(chan struct{})
	return r.cur
}

// rewind reports whether the body can be sent again: nothing past
// maxReplay was read, and the failed attempt's transport is done with it
// (a transport may close a body after RoundTrip returned).
func (r *replay) rewind() bool {
	r.mu.Lock()
	done, over := r.done, r.over
	r.mu.Unlock()
	if over {
		return false
	}
	select {
	case <-done:
		return true
	case <-time.After(time.Second):
		return false
	}
}

func (r *replay) close() { r.src.Close() }

type attemptBody struct {
	r      *replay
	pos    int
	closed bool
}

func (b *attemptBody) Read(p []byte) (int, error) {
	r := b.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if b.closed || r.cur != b {
		return 0, errors.New("gateway: request body of a finished attempt")
	}
	if b.pos < len(r.buf) {
		n := copy(p, r.buf[b.pos:])
		b.pos += n
		return n, nil
	}
	if r.srcErr != nil {
		return 0, r.srcErr
	}
	n, err := r.src.Read(p)
	if n > 0 {
		if !r.over && len(r.buf)+n <= maxReplay {
			r.buf = append(r.buf, p[:n]...)
			b.pos += n
		} else {
			r.over = true
		}
	}
	if err != nil {
		r.srcErr = err
	}
	return n, err
}

func (b *attemptBody) Close() error {
	r := b.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !b.closed {
		b.closed = true
		if r.cur == b {
			close(r.done)
		}
	}
	return nil
}

// bufferPool reuses the buffers ReverseProxy copies response bodies with.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, discovery.ErrNoInstances):
		service := r.PathValue("service")
		if rec, ok := w.(*statusRecorder); ok {
			service = rec.service // routed without the ServeMux
		}
		http.Error(w, fmt.Sprintf("no instance of service %q is available", service),
			http.StatusServiceUnavailable)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		w.WriteHeader(statusClientGone) // nobody is left to read it
	default:
		http.Error(w, "upstream failed: "+err.Error(), http.StatusBadGateway)
	}
}
