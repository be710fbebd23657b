package etcdtest

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a target address and can cut, stall or
// slow them, to put one client out of reach of etcd while others still reach
// it.
type Proxy struct {
	t      testing.TB
	l      net.Listener
	scheme string
	target string

	mu     sync.Mutex
	cut    bool
	closed bool
	paused chan struct{} // non-nil while paused; closed on resume
	held   chan struct{} // the same for replies alone (PauseReplies)
	delay  time.Duration
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port, or a URL whose scheme
// Endpoint keeps) on a free loopback port. It is closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: proxy listen: %v", err)
	}
	scheme := "http"
	if i := strings.Index(target, "://"); i >= 0 {
		scheme = target[:i]
	}
	p := &Proxy{t: t, l: l, scheme: scheme, target: hostport(target), conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Endpoint is the proxy's address as a client URL, with the target's scheme.
func (p *Proxy) Endpoint() string { return p.scheme + "://" + p.l.Addr().String() }

// Cut resets every connection through the proxy and drops new ones until
// Restore: the client sees its connections fail at once.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, as a broken network path would
		}
	}
	p.closeConnsLocked()
}

// Pause stops forwarding bytes in both directions while keeping connections
// open, like a network partition: requests hang instead of failing.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		p.paused = make(chan struct{})
	}
}

// PauseReplies stops forwarding bytes from the target only: requests
// still arrive and are applied, their answers are held, as when a
// partition begins while etcd answers. Pause after it stops both ways.
func (p *Proxy) PauseReplies() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = make(chan struct{})
	}
}

// Delay holds every byte for d in each direction before passing it on, as a
// slow link would: a round trip takes 2d longer. Zero removes the delay.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Restore undoes Cut, Pause, PauseReplies and Delay.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.delay = 0
	p.resumeLocked()
}

func (p *Proxy) resumeLocked() {
	if p.paused != nil {
		close(p.paused)
		p.paused = nil
	}
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

// Close stops the proxy and closes every connection through it. It is
// idempotent.
func (p *Proxy) Close() {
	p.l.Close()
	p.mu.Lock()
	p.closed = true
	p.closeConnsLocked()
	p.resumeLocked()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) closeConnsLocked() {
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(in)
	}
}

func (p *Proxy) serve(in net.Conn) {
	defer p.wg.Done()
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		in.Close()
		return
	}
	if !p.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(out, in, false) })
	wg.Go(func() { p.pipe(in, out, true) })
	wg.Wait()
	p.untrack(in, out)
}

// track registers a connection pair, unless the proxy is cut or closed (a
// connection accepted just before Close must not outlive it).
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
	}
}

// chunk is bytes read from one side, stamped with when they arrived.
type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies src to dst, holding bytes while the proxy is paused and for
// the delay after they arrived; when either side fails, both are closed.
// Reading and writing are separate, so a delay does not add up over
// back-to-back chunks.
func (p *Proxy) pipe(dst, src net.Conn, replies bool) {
	queue := make(chan chunk, 64)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer dst.Close()
		defer src.Close()
		failed := false
		for c := range queue { // drained to the end, so the reader never blocks on it
			if failed {
				continue
			}
			p.waitResumed(replies)
			if d := p.delayFor(c.at); d > 0 {
				time.Sleep(d) // the link's latency itself
			}
			p.waitResumed(replies)
			if _, err := dst.Write(c.b); err != nil {
				failed = true
				src.Close() // ends the reader
			}
		}
	})
	defer wg.Wait()
	defer close(queue)
	for {
		buf := make([]byte, 32*1024)
		n, err := src.Read(buf)
		if n > 0 {
			queue <- chunk{b: buf[:n], at: time.Now()}
		}
		if err != nil {
			return
		}
	}
}

// delayFor is how much longer bytes that arrived at must wait.
func (p *Proxy) delayFor(at time.Time) time.Duration {
	p.mu.Lock()
	d := p.delay
	p.mu.Unlock()
	return time.Until(at.Add(d))
}

// waitResumed waits while the proxy is paused, or holds replies when
// these are.
func (p *Proxy) waitResumed(replies bool) {
	for {
		p.mu.Lock()
		ch := p.paused
		if ch == nil && replies {
			ch = p.held
		}
		p.mu.Unlock()
		if ch == nil {
			return
		}
		<-ch
	}
}

// hostport strips a URL's scheme.
func hostport(u string) string {
	if _, rest, ok := strings.Cut(u, "://"); ok {
		return rest
	}
	return u
}
