package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// Faults that start at a transition rather than in steady state.

// partitionAtTakeover black-holes a client the moment it takes the
// leadership (lead) or the mutex, before its first fenced write under it:
// the handle's own watch of its key is then being created behind the black
// hole. It must still learn of its loss before the next leader or holder
// writes, and its writes sent into the partition must be refused.
func (s *suite) partitionAtTakeover(t *testing.T, round int, lead bool) {
	cl := s.clients[(round+2)%len(s.clients)]
	fault, what := takeoverLock, "holder"
	h := s.locks
	if lead {
		fault, what, h = takeoverLead, "leader", s.elections
	}
	type taken struct {
		at     time.Time
		token  int64
		done   <-chan struct{}
		err    func() error
		write  func(context.Context, ...clientv3.Op) (*clientv3.TxnResponse, error)
		prefix string
	}
	took := make(chan taken, 1)
	defer cl.stalled.Store(false)
	if lead {
		f := func(l *election.Leadership) {
			cl.stalled.Store(true) // it keeps writing until it knows it lost
			cl.partition()
			took <- taken{time.Now(), l.Token(), l.Done(), l.Err, l.Do, cl.elec.Prefix()}
		}
		cl.onLead.Store(&f)
		defer cl.onLead.Store(nil)
	} else {
		f := func(hd *lock.Hold) {
			cl.stalled.Store(true)
			cl.partition()
			took <- taken{time.Now(), hd.Token(), hd.Done(), hd.Err, hd.Do, cl.mutex.Prefix()}
		}
		cl.onHold.Store(&f)
		defer cl.onHold.Store(nil)
	}
	var tk taken
	select {
	case tk = <-took:
	case <-time.After(patience):
		t.Fatalf("%s did not take over as %s within %v", cl.name, what, patience)
	}
	m := s.mark(cl.name)
	// A write sent right after the takeover, into the black hole.
	sent := make(chan write, 1)
	logPfx := lockLogPfx
	if lead {
		logPfx = electionLogPfx
	}
	go func() { sent <- s.fencedWrite(context.Background(), cl, h, tk.token, logPfx, tk.prefix, tk.write) }()

	var lostAt time.Time
	select {
	case <-tk.done:
		lostAt = time.Now()
	case <-time.After(patience):
		t.Fatalf("the %s black-holed as it took over still believes it holds %v after", what, patience)
	}
	require.ErrorIs(t, tk.err(), roster.ErrLost, "the black-holed %s lost", what)
	s.record(fault, "it learns it lost", lostAt.Sub(tk.at))
	waitFor(t, "someone else writes as "+what, func() bool {
		now := s.mark(cl.name)
		if lead {
			return now.elections > m.elections
		}
		return now.locks > m.locks
	})
	next, ok := firstWriteAfter(h, tk.token)
	require.True(t, ok, "a new %s wrote", what)
	require.True(t, lostAt.Before(next.invoke), "the black-holed %s learned it lost at %s, after %s's first write as the next one at %s",
		what, stamp(lostAt), next.who, stamp(next.invoke))
	s.record(fault, "it knew before the next one wrote, by", next.invoke.Sub(lostAt))
	cl.restore()
	select {
	case w := <-sent:
		require.Equal(t, refused, w.outcome, "the %s's write sent into the black hole: %v", what, w.err)
	case <-time.After(patience):
		t.Fatalf("the %s's write sent into the black hole has not returned %v after the heal", what, patience)
	}
}

// The process-pause fault: a client in a process of its own (this test
// binary again, in role faultClient) leads and holds the mutex, and is
// stopped with SIGSTOP past its TTL, as a long GC pause or a frozen VM would
// stop it; the others take over; then it runs again. When it resumes it must
// learn that it lost before it writes: every write it starts after the
// resume already sees its handle lost and is refused. Its writes and terms
// join the histories checked at the end.
func (s *suite) pauseProcess(t *testing.T, round int) {
	name := fmt.Sprintf("p%d", round)
	child := etcdtest.StartChild(t, faultClient, name, strings.Join(s.endpoints, ","), fmt.Sprint(int64(round+1)<<40))
	p := &proxyChild{s: s, c: child, name: name, leads: make(chan int64, 64), holds: make(chan int64, 64),
		ended: map[int64]bool{}, lost: map[int64]bool{}}
	p.reading.Add(1)
	go p.read()
	defer p.stop(t)

	var lead, hold int64
	timeout := time.After(patience)
	for lead == 0 || hold == 0 {
		select {
		case lead = <-p.leads:
		case hold = <-p.holds:
		case <-timeout:
			t.Fatalf("%s did not both lead and hold within %v", name, patience)
		}
	}
	m := s.mark(name)
	child.Pause()
	paused := time.Now()
	s.awaitProgress(t, m, name)
	s.record(processPaused, "the others write as leader and holder", time.Since(paused))
	waitFor(t, name+" paused past its TTL", func() bool { return time.Since(paused) > ttl+time.Second })
	child.Resume()
	resumed := time.Now()
	s.record(processPaused, "paused for", resumed.Sub(paused))
	// Each loop writes once more after it knows of the loss, then ends its
	// term: every line about the old handles is read once both terms are.
	waitFor(t, name+" ends both terms", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.ended[lead] && p.ended[hold]
	})
	p.mu.Lock()
	after := p.afterResume(resumed, lead, hold)
	lostBoth := p.lost[lead] && p.lost[hold]
	p.mu.Unlock()
	require.True(t, lostBoth, "%s's terms ended by a loss", name)
	require.NotEmpty(t, after, "%s wrote again after the resume", name)
	for _, w := range after {
		require.True(t, w.KnewLost, "%s's write %d, started %v after the resume, did not see its loss",
			name, w.ID, w.Invoke.Sub(resumed).Round(time.Microsecond))
		require.Equal(t, refused.String(), w.Outcome, "%s's write %d after the resume", name, w.ID)
	}
	t.Logf("%s: %d writes started after the resume, each seeing its loss and refused", name, len(after))
}

// proxyChild follows a faultClient child's report lines into the suite's
// histories.
type proxyChild struct {
	s       *suite
	c       *etcdtest.Child
	name    string
	leads   chan int64
	holds   chan int64
	reading sync.WaitGroup

	mu     sync.Mutex
	writes []childWrite
	ended  map[int64]bool // tokens whose term the child ended
	lost   map[int64]bool // of those, the ones that ended by a loss
}

// childWrite and childTerm are what a faultClient reports, one JSON line
// each.
type childWrite struct {
	Kind     string    `json:"kind"` // election or mutex
	ID       int64     `json:"id"`
	Token    int64     `json:"token"`
	Invoke   time.Time `json:"invoke"`
	Ret      time.Time `json:"ret"`
	Outcome  string    `json:"outcome"`
	Rev      int64     `json:"rev"`
	Oldest   int64     `json:"oldest"`
	KnewLost bool      `json:"knew_lost"` // the handle's Err was set when the write started
	Err      string    `json:"err"`
}

type childTerm struct {
	Kind  string    `json:"kind"`
	Token int64     `json:"token"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Lost  bool      `json:"lost"`
}

type childLine struct {
	Write *childWrite `json:"write,omitempty"`
	Term  *childTerm  `json:"term,omitempty"`
	Lead  int64       `json:"lead,omitempty"`
	Hold  int64       `json:"hold,omitempty"`
}

func (p *proxyChild) read() {
	defer p.reading.Done()
	for line := range p.c.Lines() {
		var cl childLine
		if json.Unmarshal([]byte(line), &cl) != nil {
			continue
		}
		switch {
		case cl.Write != nil:
			w := cl.Write
			h := p.s.locks
			if w.Kind == "election" {
				h = p.s.elections
			}
			out := unknown
			switch w.Outcome {
			case applied.String():
				out = applied
			case refused.String():
				out = refused
			}
			h.addWrite(write{id: w.ID, who: p.name, token: w.Token, invoke: w.Invoke, ret: w.Ret,
				outcome: out, rev: w.Rev, oldest: w.Oldest, phase: p.s.currentPhase(), err: errors.New(w.Err)})
			p.mu.Lock()
			p.writes = append(p.writes, *w)
			p.mu.Unlock()
		case cl.Term != nil:
			h := p.s.locks
			if cl.Term.Kind == "election" {
				h = p.s.elections
			}
			h.addTerm(term{who: p.name, token: cl.Term.Token, start: cl.Term.Start, end: cl.Term.End, lost: cl.Term.Lost, phase: p.s.currentPhase()})
			p.mu.Lock()
			p.ended[cl.Term.Token], p.lost[cl.Term.Token] = true, cl.Term.Lost
			p.mu.Unlock()
		case cl.Lead != 0:
			select {
			case p.leads <- cl.Lead:
			default: // nobody waits any more
			}
		case cl.Hold != 0:
			select {
			case p.holds <- cl.Hold:
			default:
			}
		}
	}
}

// afterResume returns the writes under tokens started after resumed. p.mu
// must be held.
func (p *proxyChild) afterResume(resumed time.Time, tokens ...int64) []childWrite {
	var out []childWrite
	for _, w := range p.writes {
		if w.Invoke.After(resumed) && slices.Contains(tokens, w.Token) {
			out = append(out, w)
		}
	}
	return out
}

// stop asks the child to stop and waits until its last lines are read.
func (p *proxyChild) stop(t *testing.T) {
	p.c.Send("quit")
	done := make(chan struct{})
	go func() { p.reading.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(patience):
		t.Errorf("%s did not stop within %v", p.name, patience)
		p.c.Kill()
	}
}

// faultClient is the role of a child client: it campaigns and takes the
// mutex, keeping each until it loses it, with a fenced write every
// writePace, and reports what it does on stdout. Args: name, endpoints,
// the first ID of its log entries. It stops on "quit" on stdin.
var faultClient = etcdtest.Role("faultClient", func(args []string, in *bufio.Scanner, out io.Writer) error {
	name, endpoints := args[0], strings.Split(args[1], ",")
	var firstID int64
	fmt.Sscan(args[2], &firstID)
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	elec, err := election.New(cli, electionName, election.WithTTL(ttl))
	if err != nil {
		return err
	}
	mutex, err := lock.NewMutex(cli, mutexName, lock.WithTTL(ttl))
	if err != nil {
		return err
	}
	var outMu sync.Mutex
	emit := func(v childLine) {
		b, _ := json.Marshal(v)
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(out, string(b))
	}
	var nextID atomic.Int64
	nextID.Store(firstID)
	write := func(ctx context.Context, kind string, token int64, errf func() error, prefix, logPfx string,
		do func(context.Context, ...clientv3.Op) (*clientv3.TxnResponse, error)) {
		w := childWrite{Kind: kind, ID: nextID.Add(1), Token: token, KnewLost: errf() != nil, Invoke: time.Now()}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		resp, err := do(wctx,
			clientv3.OpPut(logKey(logPfx, w.ID), fmt.Sprintf("%s %d", name, token)),
			clientv3.OpGet(prefix, clientv3.WithFirstCreate()...))
		cancel()
		w.Ret = time.Now()
		switch {
		case err == nil:
			w.Outcome, w.Rev = applied.String(), resp.Header.Revision
			if kvs := resp.Responses[1].GetResponseRange().GetKvs(); len(kvs) > 0 {
				w.Oldest = kvs[0].CreateRevision
			}
		case errors.Is(err, election.ErrNotLeader), errors.Is(err, lock.ErrNotHeld):
			w.Outcome = refused.String()
		default:
			w.Outcome = unknown.String()
		}
		if err != nil {
			w.Err = err.Error()
		}
		emit(childLine{Write: &w})
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = elec.Run(ctx, name, func(wctx context.Context, l *election.Leadership) error {
			start := time.Now()
			emit(childLine{Lead: l.Token()})
			// Writes go on until the loss is known, and once more after:
			// that one must be refused.
			for known := false; !known && ctx.Err() == nil; {
				known = l.Err() != nil
				write(ctx, "election", l.Token(), l.Err, elec.Prefix(), electionLogPfx, l.Do)
				pace(ctx, writePace)
			}
			emit(childLine{Term: &childTerm{Kind: "election", Token: l.Token(), Start: start, End: time.Now(), Lost: l.Err() != nil}})
			return nil
		})
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			h, err := mutex.Lock(ctx)
			if err != nil {
				pace(ctx, 50*time.Millisecond)
				continue
			}
			start := time.Now()
			emit(childLine{Hold: h.Token()})
			for known := false; !known && ctx.Err() == nil; {
				known = h.Err() != nil
				write(ctx, "mutex", h.Token(), h.Err, mutex.Prefix(), lockLogPfx, h.Do)
				pace(ctx, writePace)
			}
			emit(childLine{Term: &childTerm{Kind: "mutex", Token: h.Token(), Start: start, End: time.Now(), Lost: h.Err() != nil}})
			rctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			_ = h.Release(rctx)
			cancel()
		}
	})
	for in.Scan() {
		if in.Text() == "quit" {
			break
		}
	}
	stop()
	wg.Wait()
	return errors.Join(elec.Close(), mutex.Close())
})
