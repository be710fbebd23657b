package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rosterkit/roster/embedded"
)

// flags are the command line, with etcd's flag names and meanings.
type flags struct {
	name, dataDir                   string
	listenClient, advertiseClient   string
	listenPeer, advertisePeer       string
	initialCluster, token, state    string
	heartbeatMs, electionMs         uint
	compactionMode, compactionValue string
	quota                           int64
	logLevel                        string
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("roster-etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.name, "name", embedded.DefaultName, "member name, unique in its cluster")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory, kept across restarts (default: a temporary one, removed on exit)")
	fs.StringVar(&f.listenClient, "listen-client-urls", "http://127.0.0.1:2379", "URL to serve clients on (one; port 0 picks a free one)")
	fs.StringVar(&f.advertiseClient, "advertise-client-urls", "", "client URL published to the cluster (default: the listen URL)")
	fs.StringVar(&f.listenPeer, "listen-peer-urls", "", "URL to serve peers on (default: this member's --initial-cluster entry, else a free loopback port)")
	fs.StringVar(&f.advertisePeer, "initial-advertise-peer-urls", "", "peer URL published to the cluster (default: the listen URL)")
	fs.StringVar(&f.initialCluster, "initial-cluster", "", "members to bootstrap a cluster with: name=http://host:port,…")
	fs.StringVar(&f.token, "initial-cluster-token", "", "token of the cluster being bootstrapped, the same on every member")
	fs.StringVar(&f.state, "initial-cluster-state", "new", "new: bootstrap with --initial-cluster")
	fs.UintVar(&f.heartbeatMs, "heartbeat-interval", 0, "Raft heartbeat interval in ms (default: etcd's 100)")
	fs.UintVar(&f.electionMs, "election-timeout", 0, "Raft election timeout in ms (default: etcd's 1000)")
	fs.StringVar(&f.compactionMode, "auto-compaction-mode", "periodic", "periodic (retention is a duration) or revision (retention is a count)")
	fs.StringVar(&f.compactionValue, "auto-compaction-retention", embedded.DefaultCompactionRetention.String(), "history to keep; 0 turns auto-compaction off")
	fs.Int64Var(&f.quota, "quota-backend-bytes", 0, "backend size that raises the NOSPACE alarm (default: etcd's 2 GiB)")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error (to stderr)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return f, err
		}
		return f, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return f, nil
}

// options turns the flags into embedded options, refusing what cannot work.
func (f flags) options(stderr io.Writer) ([]embedded.Option, error) {
	opts := []embedded.Option{embedded.WithName(f.name)}
	if f.dataDir != "" {
		opts = append(opts, embedded.WithDataDir(f.dataDir))
	}
	for _, u := range []struct {
		flag, value string
		opt         func(string) embedded.Option
	}{
		{"listen-client-urls", f.listenClient, embedded.WithClientAddr},
		{"advertise-client-urls", f.advertiseClient, embedded.WithAdvertiseClientAddr},
		{"listen-peer-urls", f.listenPeer, embedded.WithPeerAddr},
		{"initial-advertise-peer-urls", f.advertisePeer, embedded.WithAdvertisePeerAddr},
	} {
		if u.value == "" {
			continue
		}
		hostport, err := plainURL(u.flag, u.value)
		if err != nil {
			return nil, err
		}
		opts = append(opts, u.opt(hostport))
	}
	switch f.state {
	case "new":
	default:
		return nil, fmt.Errorf("%w: --initial-cluster-state %q: want new", errUsage, f.state)
	}
	if f.initialCluster != "" {
		members, err := parseCluster(f.initialCluster)
		if err != nil {
			return nil, err
		}
		opts = append(opts, embedded.WithCluster(f.token, members...))
	} else if f.token != "" {
		return nil, fmt.Errorf("%w: --initial-cluster-token needs --initial-cluster", errUsage)
	}
	if f.heartbeatMs > 0 || f.electionMs > 0 {
		opts = append(opts, embedded.WithTimings(time.Duration(f.heartbeatMs)*time.Millisecond, time.Duration(f.electionMs)*time.Millisecond))
	}
	copt, err := compactionOption(f.compactionMode, f.compactionValue)
	if err != nil {
		return nil, err
	}
	opts = append(opts, copt)
	if f.quota < 0 {
		return nil, fmt.Errorf("%w: --quota-backend-bytes %d: negative", errUsage, f.quota)
	}
	if f.quota > 0 {
		opts = append(opts, embedded.WithQuotaBackendBytes(f.quota))
	}
	lvl, err := level(f.logLevel)
	if err != nil {
		return nil, err
	}
	opts = append(opts, embedded.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))))
	return opts, nil
}

// plainURL returns the host:port of an http URL. One URL only: a member
// here serves one address of each kind.
func plainURL(flagName, s string) (string, error) {
	if strings.Contains(s, ",") {
		return "", fmt.Errorf("%w: --%s %q: one URL only", errUsage, flagName, s)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("%w: --%s %q: want http://host:port", errUsage, flagName, s)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("%w: --%s %q: scheme %q: want http", errUsage, flagName, s, u.Scheme)
	}
	return u.Host, nil
}

// parseCluster reads etcd's --initial-cluster form: name=url,name=url.
func parseCluster(s string) ([]embedded.Member, error) {
	var ms []embedded.Member
	for part := range strings.SplitSeq(s, ",") {
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("%w: --initial-cluster %q: want name=http://host:port,…", errUsage, s)
		}
		if _, err := plainURL("initial-cluster", u); err != nil {
			return nil, err
		}
		ms = append(ms, embedded.Member{Name: name, PeerURL: u})
	}
	return ms, nil
}

func compactionOption(mode, value string) (embedded.Option, error) {
	switch mode {
	case "periodic":
		if value == "0" {
			return embedded.WithAutoCompaction(0), nil
		}
		d, err := time.ParseDuration(value)
		if err != nil {
			// etcd reads a bare number as hours.
			h, herr := strconv.ParseUint(value, 10, 32)
			if herr != nil {
				return nil, fmt.Errorf("%w: --auto-compaction-retention %q: want a duration such as 10m", errUsage, value)
			}
			d = time.Duration(h) * time.Hour
		}
		if d < 0 {
			return nil, fmt.Errorf("%w: --auto-compaction-retention %q: negative", errUsage, value)
		}
		return embedded.WithAutoCompaction(d), nil
	case "revision":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: --auto-compaction-retention %q: want a number of revisions", errUsage, value)
		}
		if n == 0 {
			return embedded.WithAutoCompaction(0), nil
		}
		return embedded.WithRevisionCompaction(n), nil
	default:
		return nil, fmt.Errorf("%w: --auto-compaction-mode %q: want periodic or revision", errUsage, mode)
	}
}

func level(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, s)
	}
	return l, nil
}
