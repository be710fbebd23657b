package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
)

// maxAttempts bounds how many instances one idempotent request may try when
// connections fail.
const maxAttempts = 3

type routeKey struct{}

// newProxy routes /svc/<service>/<rest> to an instance of <service>. The
// ReverseProxy streams bodies both ways; its Transport picks the instance and
// retries idempotent requests on another one when a connection fails.
func newProxy(rt *router) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetXForwarded()
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Path = pr.In.PathValue("rest")
			if !strings.HasPrefix(pr.Out.URL.Path, "/") {
				pr.Out.URL.Path = "/" + pr.Out.URL.Path
			}
			pr.Out.URL.RawPath = ""
			pr.Out.Host = "" // the instance's own address
		},
		Transport:    &pickingTransport{base: upstreamTransport()},
		ErrorHandler: proxyError,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		service := r.PathValue("service")
		rte, err := rt.forRequest(r.Context(), service)
		if err != nil {
			status := http.StatusServiceUnavailable
			if errors.Is(err, roster.ErrInvalidName) {
				status = http.StatusBadRequest
			}
			http.Error(w, err.Error(), status)
			return
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routeKey{}, rte)))
	})
}

// upstreamTransport keeps enough idle connections per instance for a busy
// gateway: the default of 2 would close and reopen connections under any
// concurrency, costing a handshake per request.
func upstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}

// pickingTransport chooses the instance for each attempt. An attempt that
// fails to connect is reported to the picker (feeding passive ejection) and,
// for a request that can be replayed safely, retried on another instance.
type pickingTransport struct {
	base http.RoundTripper
}

func (t *pickingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rte := req.Context().Value(routeKey{}).(*route)
	tried := make(map[string]bool, maxAttempts)
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		p, err := pickUntried(rte, req, tried)
		if err != nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, err
		}
		tried[p.Instance.ID] = true
		out := req.Clone(req.Context())
		out.URL.Host = p.Instance.Addr
		if attempt > 0 && req.GetBody != nil {
			if out.Body, err = req.GetBody(); err != nil {
				p.Done(nil)
				return nil, err
			}
		}
		resp, err := t.base.RoundTrip(out)
		if err == nil {
			resp.Body = &doneBody{ReadCloser: resp.Body, done: p.Done}
			return resp, nil
		}
		p.Done(err)
		lastErr = fmt.Errorf("instance %s at %s: %w", p.Instance.ID, p.Instance.Addr, err)
		if !replayable(req) || req.Context().Err() != nil {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

// pickUntried picks, preferring an instance this request has not tried yet.
func pickUntried(rte *route, req *http.Request, tried map[string]bool) (discovery.Picked, error) {
	var p discovery.Picked
	var err error
	for range 2 * maxAttempts {
		if p, err = rte.pick(req); err != nil || !tried[p.Instance.ID] {
			return p, err
		}
		p.Done(nil)
	}
	return p, err
}

// replayable reports whether a failed attempt may be sent again: the method
// is idempotent and the body, if any, can be produced again.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
	default:
		return false
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// doneBody reports the end of a proxied call when its response body closes,
// so p2c counts the call as in flight while the body streams.
type doneBody struct {
	io.ReadCloser
	once sync.Once
	done func(error)
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.done(nil) })
	return err
}

func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, discovery.ErrNoInstances):
		http.Error(w, fmt.Sprintf("no instance of service %q is available", r.PathValue("service")),
			http.StatusServiceUnavailable)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody is left to answer.
	default:
		http.Error(w, "upstream failed: "+err.Error(), http.StatusBadGateway)
	}
}
