package rostergrpc

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/metadata"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
)

// childPicker stands for a ready pick_first child: it returns its result.
type childPicker struct{ res balancer.PickResult }

func (c childPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) { return c.res, nil }

// testPicker returns the picker a balancer installs over n ready endpoints.
func testPicker(t testing.TB, kind, config string, n int) *grpcPicker {
	t.Helper()
	cfg, err := parseConfig(kind, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	var src source
	insts := make([]roster.Instance, n)
	children := make(map[string]balancer.Picker, n)
	for i := range insts {
		insts[i] = roster.Instance{Service: "bench", ID: fmt.Sprintf("i%03d", i), Addr: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: 1 + i%3}
		children[insts[i].ID] = childPicker{}
	}
	src.snap.Store(discovery.NewSnapshot("bench", insts...))
	p, err := newPicker(cfg, &src, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &rosterBalancer{}
	b.calls.New = func() any {
		c := &call{pool: &b.calls}
		c.done = c.finish
		return c
	}
	return &grpcPicker{pick: p, children: children, cfg: cfg, calls: &b.calls}
}

var pickCases = []struct {
	name, kind, config string
	ctx                context.Context
}{
	{"weighted", WeightedName, `{}`, context.Background()},
	{"p2c", P2CName, `{}`, context.Background()},
	{"hash/key", HashName, `{}`, WithHashKey(context.Background(), "user-42")},
	{"hash/header", HashName, `{"header":"x-user"}`, metadata.AppendToOutgoingContext(context.Background(), "x-user", "user-42")},
	{"hash/nokey", HashName, `{}`, context.Background()},
}

// pickDone is one pick and its Done, as gRPC makes them for a call that got
// an answer.
func pickDone(p *grpcPicker, info balancer.PickInfo) {
	res, err := p.Pick(info)
	if err != nil {
		panic(err)
	}
	res.Done(balancer.DoneInfo{BytesSent: true, BytesReceived: true})
}

// A pick and its Done allocate nothing, with the key in the context; the
// header costs the copy gRPC makes of the metadata values.
func TestPickAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, tc := range pickCases {
		p := testPicker(t, tc.kind, tc.config, 10)
		info := balancer.PickInfo{FullMethodName: "/svc/M", Ctx: tc.ctx}
		for range 100 {
			pickDone(p, info)
		}
		allocs := testing.AllocsPerRun(1000, func() { pickDone(p, info) })
		t.Logf("%s: %.0f allocs per pick and Done", tc.name, allocs)
		want := 0.0
		if tc.name == "hash/header" {
			want = 1
		}
		if allocs > want {
			t.Errorf("%s: %v allocs per pick, want %v", tc.name, allocs, want)
		}
	}
}

// BenchmarkPick is the cost of one pick and its Done in the balancers'
// picker over 10 ready endpoints, without gRPC's call around it:
//
//	go test -run '^$' -bench Pick -benchmem ./rostergrpc
func BenchmarkPick(b *testing.B) {
	for _, tc := range pickCases {
		b.Run(tc.name, func(b *testing.B) {
			p := testPicker(b, tc.kind, tc.config, 10)
			info := balancer.PickInfo{FullMethodName: "/svc/M", Ctx: tc.ctx}
			pickDone(p, info)
			b.ReportAllocs()
			for b.Loop() {
				pickDone(p, info)
			}
		})
	}
}
