package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/keys"
)

// leaderRow is one election as `roster leaders` shows it.
type leaderRow struct {
	Election   string `json:"election"`
	Leader     string `json:"leader"` // the leader's value: what it campaigned with
	Key        string `json:"key"`
	Token      int64  `json:"token"` // the leader key's create revision
	Lease      int64  `json:"lease"`
	Candidates int    `json:"candidates"` // the leader included
}

// groupByName groups the keys under prefix by recipe name, each group in
// create-revision order: the order of etcd's recipes' queues.
func groupByName(kvs []*mvccpb.KeyValue, prefix string) map[string][]*mvccpb.KeyValue {
	groups := map[string][]*mvccpb.KeyValue{}
	for _, kv := range kvs {
		if name, _, ok := keys.SplitRecipeKey(prefix, string(kv.Key)); ok {
			groups[name] = append(groups[name], kv)
		}
	}
	for _, g := range groups {
		slices.SortFunc(g, func(a, b *mvccpb.KeyValue) int { return int(a.CreateRevision - b.CreateRevision) })
	}
	return groups
}

func runLeaders(ctx context.Context, e *env, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: leaders takes no arguments", errUsage)
	}
	return e.withClient(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		prefix := keys.ElectionsPrefix(e.namespace)
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("list elections: %w", err)
		}
		groups := groupByName(resp.Kvs, prefix)
		rows := []leaderRow{}
		for _, name := range slices.Sorted(maps.Keys(groups)) {
			g := groups[name]
			rows = append(rows, leaderRow{Election: name, Leader: string(g[0].Value), Key: string(g[0].Key),
				Token: g[0].CreateRevision, Lease: g[0].Lease, Candidates: len(g)})
		}
		if e.output == "json" {
			return e.json(rows)
		}
		cells := make([][]string, len(rows))
		for i, r := range rows {
			cells[i] = []string{r.Election, orDash(r.Leader), strconv.FormatInt(r.Token, 10), fmt.Sprintf("%x", r.Lease), strconv.Itoa(r.Candidates)}
		}
		return table(e.stdout, []string{"ELECTION", "LEADER", "TOKEN", "LEASE", "CANDIDATES"}, cells)
	})
}
