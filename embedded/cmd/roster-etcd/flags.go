package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rosterkit/roster/embedded"
)

// flags are the command line of a member, with etcd's flag names and
// meanings where etcd has the concept.
type flags struct {
	name, dataDir                   string
	listenClient, advertiseClient   string
	listenPeer, advertisePeer       string
	listenMetrics                   string
	insecureNonLoopback             bool
	initialCluster, token, state    string
	joinEndpoints                   string
	heartbeatMs, electionMs         uint
	compactionMode, compactionValue string
	quota                           int64

	autoDefrag          bool
	defragCheck         time.Duration
	defragMinFree       int64
	defragMaxInUse      float64
	defragQuotaRatio    float64
	nospaceRecovery     bool
	nospaceKeepHistory  bool
	snapshotDir         string
	snapshotInterval    time.Duration
	snapshotKeep        int
	certFile, keyFile   string
	trustedCA           string
	clientCertAuth      bool
	peerCert, peerKey   string
	peerTrustedCA       string
	peerClientCertAuth  bool
	rootPassword        string
	rootPasswordFile    string
	logLevel            string
	set                 map[string]bool // flags given on the command line
	password            string          // the root password, read from wherever it was given
	members             []embedded.Member
	level               slog.Level
	clientTLS, peerTLS  *embedded.TLSFiles
	defragPolicy        embedded.DefragPolicy
	compaction          embedded.Option
	snapshots           *embedded.SnapshotSchedule
	joinURLs            []string
	existingWithMembers bool
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{set: map[string]bool{}}
	fs := flag.NewFlagSet("roster-etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: roster-etcd [flags]              run a member")
		fmt.Fprintln(stderr, "       roster-etcd leave [flags]        remove a member from its cluster (leave -h)")
		fs.PrintDefaults()
	}

	fs.StringVar(&f.name, "name", embedded.DefaultName, "member name, unique in its cluster")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory, kept across restarts (default: a temporary one, removed on exit)")

	fs.StringVar(&f.listenClient, "listen-client-urls", "http://127.0.0.1:2379", "URL to serve clients on (one; port 0 picks a free one); https with --cert-file")
	fs.StringVar(&f.advertiseClient, "advertise-client-urls", "", "client URL published to the cluster (default: the listen URL)")
	fs.StringVar(&f.listenPeer, "listen-peer-urls", "", "URL to serve peers on (default: this member's --initial-cluster entry, else a free loopback port); https with --peer-cert-file")
	fs.StringVar(&f.advertisePeer, "initial-advertise-peer-urls", "", "peer URL published to the cluster (default: the listen URL)")
	fs.StringVar(&f.listenMetrics, "listen-metrics-urls", "", "URL to serve etcd's /metrics and /health on besides the client URL; https with --cert-file")
	fs.BoolVar(&f.insecureNonLoopback, "insecure-non-loopback", false, "allow plain-text listeners beyond loopback: anyone reaching them reads and writes every key")

	fs.StringVar(&f.initialCluster, "initial-cluster", "", "members to bootstrap a cluster with: name=http://host:port,…")
	fs.StringVar(&f.token, "initial-cluster-token", "", "token of the cluster being bootstrapped, the same on every member")
	fs.StringVar(&f.state, "initial-cluster-state", "new", "new: bootstrap with --initial-cluster; existing: join a running cluster, through --join-endpoints or after \"etcdctl member add\" with --initial-cluster as it printed")
	fs.StringVar(&f.joinEndpoints, "join-endpoints", "", "client URLs of a running cluster: add this member through them and start it (implies --initial-cluster-state existing)")

	fs.UintVar(&f.heartbeatMs, "heartbeat-interval", 0, "Raft heartbeat interval in ms (default: etcd's 100)")
	fs.UintVar(&f.electionMs, "election-timeout", 0, "Raft election timeout in ms (default: etcd's 1000)")

	fs.StringVar(&f.compactionMode, "auto-compaction-mode", "periodic", "periodic (retention is a duration) or revision (retention is a count)")
	fs.StringVar(&f.compactionValue, "auto-compaction-retention", embedded.DefaultCompactionRetention.String(), "history to keep; 0 turns auto-compaction off")
	fs.Int64Var(&f.quota, "quota-backend-bytes", 0, "database size that raises the NOSPACE alarm (default: etcd's 2 GiB)")

	fs.BoolVar(&f.autoDefrag, "auto-defrag", true, "defragment when the thresholds below are met, one member at a time")
	fs.DurationVar(&f.defragCheck, "defrag-check-interval", 0, "how often a member looks at its database (default 10s)")
	fs.Int64Var(&f.defragMinFree, "defrag-min-free-bytes", 0, "unused bytes below which a member never defragments (default 64 MiB, or 1/16 of the quota if smaller)")
	fs.Float64Var(&f.defragMaxInUse, "defrag-max-in-use-ratio", 0, "defragment when at most this share of the file holds data (default 0.5)")
	fs.Float64Var(&f.defragQuotaRatio, "defrag-quota-ratio", 0, "or when the file reaches this share of the quota (default 0.8)")
	fs.BoolVar(&f.nospaceRecovery, "nospace-recovery", true, "recover a NOSPACE alarm: compact, defragment every member, disarm")
	fs.BoolVar(&f.nospaceKeepHistory, "nospace-keep-history", false, "when recovering, compact no further than --auto-compaction-retention")

	fs.StringVar(&f.snapshotDir, "snapshot-dir", "", "write a snapshot (the format of \"etcdctl snapshot save\") to this directory on a schedule")
	fs.DurationVar(&f.snapshotInterval, "snapshot-interval", 0, "time between snapshots (default 1h)")
	fs.IntVar(&f.snapshotKeep, "snapshot-keep", 0, "snapshots to keep, the newest (default 24)")

	fs.StringVar(&f.certFile, "cert-file", "", "client TLS certificate (PEM); also this member's certificate when it calls the cluster")
	fs.StringVar(&f.keyFile, "key-file", "", "client TLS key (PEM)")
	fs.StringVar(&f.trustedCA, "trusted-ca-file", "", "CA that signs client certificates (with --client-cert-auth), and the cluster's when joining")
	fs.BoolVar(&f.clientCertAuth, "client-cert-auth", false, "demand a client certificate signed by --trusted-ca-file")
	fs.StringVar(&f.peerCert, "peer-cert-file", "", "peer TLS certificate (PEM)")
	fs.StringVar(&f.peerKey, "peer-key-file", "", "peer TLS key (PEM)")
	fs.StringVar(&f.peerTrustedCA, "peer-trusted-ca-file", "", "CA that signs the other members' certificates")
	fs.BoolVar(&f.peerClientCertAuth, "peer-client-cert-auth", false, "demand a peer certificate signed by --peer-trusted-ca-file")

	fs.StringVar(&f.rootPassword, "root-password", "", "turn authentication on with a root user of this password (visible to ps: prefer --root-password-file)")
	fs.StringVar(&f.rootPasswordFile, "root-password-file", "", "file holding the root password (its first line)")

	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error (to stderr); info also shows each defragmentation, snapshot and NOSPACE recovery")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if err := f.check(); err != nil {
		return nil, err
	}
	return f, nil
}

func usage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// check refuses every combination that cannot work, naming the flags, and
// reads what the flags point at.
func (f *flags) check() error {
	var err error
	if f.level, err = level(f.logLevel); err != nil {
		return err
	}
	if err := f.checkTLS(); err != nil {
		return err
	}
	for _, u := range []struct {
		flag string
		tls  *embedded.TLSFiles
	}{
		{"listen-client-urls", f.clientTLS},
		{"advertise-client-urls", f.clientTLS},
		{"listen-metrics-urls", f.clientTLS},
		{"listen-peer-urls", f.peerTLS},
		{"initial-advertise-peer-urls", f.peerTLS},
	} {
		if v := f.value(u.flag); v != "" {
			if _, err := oneURL(u.flag, v, u.tls != nil); err != nil {
				return err
			}
		}
	}

	switch f.state {
	case "new", "existing":
	default:
		return usage("--initial-cluster-state %q: want new or existing", f.state)
	}
	if f.joinEndpoints != "" {
		if f.set["initial-cluster-state"] && f.state == "new" {
			return usage("--join-endpoints joins a running cluster: it cannot go with --initial-cluster-state new")
		}
		if f.initialCluster != "" || f.token != "" {
			return usage("--join-endpoints takes the member list from the running cluster: leave out --initial-cluster and --initial-cluster-token")
		}
		for ep := range strings.SplitSeq(f.joinEndpoints, ",") {
			u, err := url.Parse(ep)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return usage("--join-endpoints %q: want http(s)://host:port,…", f.joinEndpoints)
			}
			f.joinURLs = append(f.joinURLs, ep)
		}
		f.state = "existing"
	}
	if f.initialCluster != "" {
		if f.members, err = parseCluster(f.initialCluster, f.peerTLS != nil); err != nil {
			return err
		}
		found := false
		for _, m := range f.members {
			found = found || m.Name == f.name
		}
		if !found {
			return usage("--name %q is not in --initial-cluster", f.name)
		}
	} else if f.token != "" {
		return usage("--initial-cluster-token needs --initial-cluster")
	}
	if f.state == "existing" && f.joinEndpoints == "" {
		if f.initialCluster == "" {
			return usage("--initial-cluster-state existing needs --join-endpoints, or --initial-cluster as \"etcdctl member add\" printed it")
		}
		f.existingWithMembers = true
	}

	if f.compaction, err = compactionOption(f.compactionMode, f.compactionValue); err != nil {
		return err
	}
	if f.quota < 0 {
		return usage("--quota-backend-bytes %d: negative", f.quota)
	}
	if err := f.checkMaintenance(); err != nil {
		return err
	}
	return f.checkAuth()
}

// value is the text of a string flag by name.
func (f *flags) value(name string) string {
	switch name {
	case "listen-client-urls":
		return f.listenClient
	case "advertise-client-urls":
		return f.advertiseClient
	case "listen-metrics-urls":
		return f.listenMetrics
	case "listen-peer-urls":
		return f.listenPeer
	case "initial-advertise-peer-urls":
		return f.advertisePeer
	}
	return ""
}

func (f *flags) checkTLS() error {
	var err error
	if f.clientTLS, err = tlsFiles("", f.certFile, f.keyFile, f.trustedCA, f.clientCertAuth); err != nil {
		return err
	}
	f.peerTLS, err = tlsFiles("peer-", f.peerCert, f.peerKey, f.peerTrustedCA, f.peerClientCertAuth)
	return err
}

// tlsFiles checks one listener's TLS flags: nil when none is given.
func tlsFiles(prefix, cert, key, ca string, auth bool) (*embedded.TLSFiles, error) {
	switch {
	case cert == "" && key == "" && ca == "" && !auth:
		return nil, nil
	case cert == "" || key == "":
		return nil, usage("TLS needs both --%scert-file and --%skey-file", prefix, prefix)
	case auth && ca == "":
		return nil, usage("--%sclient-cert-auth needs --%strusted-ca-file", prefix, prefix)
	}
	for _, p := range []string{cert, key, ca} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, usage("TLS file: %v", err)
		}
	}
	return &embedded.TLSFiles{CertFile: cert, KeyFile: key, TrustedCAFile: ca, ClientCertAuth: auth}, nil
}

func (f *flags) checkMaintenance() error {
	thresholds := []string{"defrag-check-interval", "defrag-min-free-bytes", "defrag-max-in-use-ratio", "defrag-quota-ratio"}
	if !f.autoDefrag {
		for _, t := range thresholds {
			if f.set[t] {
				return usage("--%s with --auto-defrag=false: there is no policy to tune", t)
			}
		}
	}
	f.defragPolicy = embedded.DefragPolicy{
		Disabled:      !f.autoDefrag,
		CheckInterval: f.defragCheck,
		MinFreeBytes:  f.defragMinFree,
		MaxInUseRatio: f.defragMaxInUse,
		QuotaRatio:    f.defragQuotaRatio,
	}
	switch {
	case f.defragCheck < 0:
		return usage("--defrag-check-interval %v: negative", f.defragCheck)
	case f.defragMinFree < 0:
		return usage("--defrag-min-free-bytes %d: negative", f.defragMinFree)
	case f.defragMaxInUse < 0 || f.defragMaxInUse > 1:
		return usage("--defrag-max-in-use-ratio %v: want a share between 0 and 1", f.defragMaxInUse)
	case f.defragQuotaRatio < 0 || f.defragQuotaRatio > 1:
		return usage("--defrag-quota-ratio %v: want a share between 0 and 1", f.defragQuotaRatio)
	case f.nospaceKeepHistory && !f.nospaceRecovery:
		return usage("--nospace-keep-history with --nospace-recovery=false: there is no recovery to keep it")
	}

	if f.snapshotDir == "" {
		for _, s := range []string{"snapshot-interval", "snapshot-keep"} {
			if f.set[s] {
				return usage("--%s needs --snapshot-dir", s)
			}
		}
		return nil
	}
	switch {
	case f.snapshotInterval < 0:
		return usage("--snapshot-interval %v: negative", f.snapshotInterval)
	case f.snapshotKeep < 0:
		return usage("--snapshot-keep %d: negative", f.snapshotKeep)
	}
	if st, err := os.Stat(f.snapshotDir); err != nil || !st.IsDir() {
		return usage("--snapshot-dir %q: not a directory", f.snapshotDir)
	}
	f.snapshots = &embedded.SnapshotSchedule{Dir: f.snapshotDir, Interval: f.snapshotInterval, Keep: f.snapshotKeep}
	return nil
}

func (f *flags) checkAuth() error {
	switch {
	case f.rootPassword != "" && f.rootPasswordFile != "":
		return usage("--root-password and --root-password-file: give one")
	case f.rootPasswordFile != "":
		b, err := os.ReadFile(f.rootPasswordFile)
		if err != nil {
			return usage("--root-password-file: %v", err)
		}
		f.password, _, _ = strings.Cut(string(b), "\n")
		f.password = strings.TrimRight(f.password, "\r")
		if f.password == "" {
			return usage("--root-password-file %q: empty", f.rootPasswordFile)
		}
	default:
		f.password = f.rootPassword
	}
	return nil
}

// options turns the flags into embedded options.
func (f *flags) options(stderr io.Writer) []embedded.Option {
	opts := []embedded.Option{embedded.WithName(f.name)}
	if f.dataDir != "" {
		opts = append(opts, embedded.WithDataDir(f.dataDir))
	}
	for _, u := range []struct {
		flag string
		tls  bool
		opt  func(string) embedded.Option
	}{
		{"listen-client-urls", f.clientTLS != nil, embedded.WithClientAddr},
		{"advertise-client-urls", f.clientTLS != nil, embedded.WithAdvertiseClientAddr},
		{"listen-peer-urls", f.peerTLS != nil, embedded.WithPeerAddr},
		{"initial-advertise-peer-urls", f.peerTLS != nil, embedded.WithAdvertisePeerAddr},
		{"listen-metrics-urls", f.clientTLS != nil, embedded.WithMetricsAddr},
	} {
		if v := f.value(u.flag); v != "" {
			hostport, _ := oneURL(u.flag, v, u.tls) // checked already
			opts = append(opts, u.opt(hostport))
		}
	}
	if f.insecureNonLoopback {
		opts = append(opts, embedded.WithInsecureNonLoopback())
	}
	if len(f.members) > 0 {
		opts = append(opts, embedded.WithCluster(f.token, f.members...))
	}
	if f.existingWithMembers {
		opts = append(opts, embedded.WithExistingCluster())
	}
	if f.heartbeatMs > 0 || f.electionMs > 0 {
		opts = append(opts, embedded.WithTimings(time.Duration(f.heartbeatMs)*time.Millisecond, time.Duration(f.electionMs)*time.Millisecond))
	}
	opts = append(opts, f.compaction)
	if f.quota > 0 {
		opts = append(opts, embedded.WithQuotaBackendBytes(f.quota))
	}
	opts = append(opts,
		embedded.WithDefragPolicy(f.defragPolicy),
		embedded.WithNoSpaceRecovery(embedded.NoSpaceRecovery{Disabled: !f.nospaceRecovery, KeepHistory: f.nospaceKeepHistory}))
	if f.snapshots != nil {
		opts = append(opts, embedded.WithSnapshots(*f.snapshots))
	}
	if f.clientTLS != nil {
		opts = append(opts, embedded.WithClientTLS(*f.clientTLS))
	}
	if f.peerTLS != nil {
		opts = append(opts, embedded.WithPeerTLS(*f.peerTLS))
	}
	if f.password != "" {
		opts = append(opts, embedded.WithAuth(f.password))
	}
	opts = append(opts, embedded.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.level}))))
	return opts
}

// oneURL returns the host:port of a URL whose scheme matches the TLS
// setting. One URL only: a member here serves one address of each kind.
func oneURL(flagName, s string, tls bool) (string, error) {
	if strings.Contains(s, ",") {
		return "", usage("--%s %q: one URL only", flagName, s)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", usage("--%s %q: want http://host:port", flagName, s)
	}
	switch {
	case u.Scheme == "https" && !tls:
		return "", usage("--%s %q: https needs TLS files (--%scert-file, --%skey-file)", flagName, s, tlsPrefix(flagName), tlsPrefix(flagName))
	case u.Scheme == "http" && tls:
		return "", usage("--%s %q: TLS is configured, the scheme must be https", flagName, s)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", usage("--%s %q: scheme %q: want http or https", flagName, s, u.Scheme)
	}
	return u.Host, nil
}

func tlsPrefix(flagName string) string {
	if strings.Contains(flagName, "peer") || flagName == "initial-cluster" {
		return "peer-"
	}
	return ""
}

// parseCluster reads etcd's --initial-cluster form: name=url,name=url.
func parseCluster(s string, tls bool) ([]embedded.Member, error) {
	var ms []embedded.Member
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" || u == "" {
			return nil, usage("--initial-cluster %q: want name=http://host:port,…", s)
		}
		if seen[name] {
			return nil, usage("--initial-cluster %q: member %q listed twice", s, name)
		}
		seen[name] = true
		if _, err := oneURL("initial-cluster", u, tls); err != nil {
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
				return nil, usage("--auto-compaction-retention %q: want a duration such as 10m", value)
			}
			d = time.Duration(h) * time.Hour
		}
		if d < 0 {
			return nil, usage("--auto-compaction-retention %q: negative", value)
		}
		return embedded.WithAutoCompaction(d), nil
	case "revision":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return nil, usage("--auto-compaction-retention %q: want a number of revisions", value)
		}
		if n == 0 {
			return embedded.WithAutoCompaction(0), nil
		}
		return embedded.WithRevisionCompaction(n), nil
	default:
		return nil, usage("--auto-compaction-mode %q: want periodic or revision", mode)
	}
}

func level(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, usage("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}
