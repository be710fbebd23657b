package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// memberRow is one member as `roster status` shows it.
type memberRow struct {
	ID        uint64   `json:"id"`
	Name      string   `json:"name"`
	Endpoint  string   `json:"endpoint"`
	Answering bool     `json:"answering"`
	Leader    bool     `json:"leader"`
	Learner   bool     `json:"learner"`
	Version   string   `json:"version,omitempty"`
	DBSize    int64    `json:"db_size_bytes,omitempty"`
	DBInUse   int64    `json:"db_in_use_bytes,omitempty"`
	RaftTerm  uint64   `json:"raft_term,omitempty"`
	RaftIndex uint64   `json:"raft_index,omitempty"`
	Errors    []string `json:"errors,omitempty"`
}

// clusterStatus is what `roster status -o json` prints.
type clusterStatus struct {
	Healthy  bool        `json:"healthy"`
	Problem  string      `json:"problem,omitempty"`
	Revision int64       `json:"revision"`
	Leader   uint64      `json:"leader"`
	Alarms   []string    `json:"alarms"`
	Members  []memberRow `json:"members"`
}

// errUnhealthy makes `roster status` exit 1 after printing.
var errUnhealthy = errors.New("cluster unhealthy")

func runStatus(ctx context.Context, e *env, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: status takes no arguments", errUsage)
	}
	var st clusterStatus
	err := e.withClient(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		ml, err := cli.MemberList(ctx)
		if err != nil {
			return fmt.Errorf("member list: %w", err)
		}
		answering := 0
		for _, m := range ml.Members {
			row := memberRow{ID: m.ID, Name: m.Name, Learner: m.IsLearner}
			if len(m.ClientURLs) > 0 {
				row.Endpoint = m.ClientURLs[0]
				// A member that does not answer costs at most the dial
				// timeout, so the others are still asked.
				sctx, cancel := context.WithTimeout(ctx, min(e.dialTimeout, e.commandTimeout))
				s, err := cli.Status(sctx, row.Endpoint)
				cancel()
				if err == nil {
					answering++
					row.Answering, row.Version = true, s.Version
					row.DBSize, row.DBInUse, row.RaftTerm, row.RaftIndex = s.DbSize, s.DbSizeInUse, s.RaftTerm, s.RaftIndex
					row.Leader = s.Leader == m.ID
					row.Errors = s.Errors
					if s.Leader != 0 {
						st.Leader = s.Leader
					}
				} else {
					row.Errors = []string{err.Error()}
				}
			}
			st.Members = append(st.Members, row)
		}
		st.Alarms = []string{}
		if al, err := cli.AlarmList(ctx); err == nil {
			for _, a := range al.Alarms {
				st.Alarms = append(st.Alarms, fmt.Sprintf("%s on %x", a.Alarm, a.MemberID))
			}
		}
		// A linearizable read succeeds only through a quorum with a leader.
		resp, err := cli.Get(ctx, "\x00roster-status", clientv3.WithCountOnly())
		switch {
		case err != nil:
			st.Problem = "no linearizable read: " + err.Error()
		case len(st.Alarms) > 0:
			st.Problem = "alarm raised: " + strings.Join(st.Alarms, "; ")
		case answering*2 <= len(ml.Members):
			st.Problem = fmt.Sprintf("only %d of %d members answer", answering, len(ml.Members))
		default:
			st.Healthy = true
		}
		if err == nil {
			st.Revision = resp.Header.Revision
		}
		return nil
	})
	if err != nil {
		return err
	}
	if e.output == "json" {
		if err := e.json(st); err != nil {
			return err
		}
	} else {
		cells := make([][]string, len(st.Members))
		for i, m := range st.Members {
			role := "follower"
			switch {
			case !m.Answering:
				role = "unreachable"
			case m.Leader:
				role = "leader"
			case m.Learner:
				role = "learner"
			}
			cells[i] = []string{fmt.Sprintf("%x", m.ID), orDash(m.Name), orDash(m.Endpoint), role, orDash(m.Version),
				size(m.DBSize), size(m.DBInUse), strconv.FormatUint(m.RaftTerm, 10), orDash(strings.Join(m.Errors, "; "))}
		}
		if err := table(e.stdout, []string{"ID", "NAME", "ENDPOINT", "ROLE", "VERSION", "DB SIZE", "IN USE", "RAFT TERM", "ERRORS"}, cells); err != nil {
			return err
		}
		if st.Healthy {
			fmt.Fprintf(e.stdout, "cluster healthy: %d members, leader %x, revision %d\n", len(st.Members), st.Leader, st.Revision)
		} else {
			fmt.Fprintf(e.stdout, "cluster unhealthy: %s\n", st.Problem)
		}
	}
	if !st.Healthy {
		return fmt.Errorf("%w: %s", errUnhealthy, st.Problem)
	}
	return nil
}

func size(n int64) string {
	switch {
	case n == 0:
		return "-"
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}
