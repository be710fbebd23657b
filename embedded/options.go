package embedded

import (
	"log/slog"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// An Option configures a member started by Start, Join or StartCluster.
type Option func(*config)

// Member names one member of a cluster and the peer URL the others reach it at,
// as in etcd's --initial-cluster flag ("name=http://host:port").
type Member struct {
	Name    string
	PeerURL string
}

// TLSFiles points at PEM files for one listener. ClientCertAuth makes the
// server demand a certificate signed by TrustedCAFile from every client.
type TLSFiles struct {
	CertFile       string
	KeyFile        string
	TrustedCAFile  string
	ClientCertAuth bool
}

const (
	// DefaultName is the member name used when WithName is not given.
	DefaultName = "roster"
	// DefaultCompactionRetention is how much history auto-compaction keeps by
	// default: watchers that fall further behind than this must re-list.
	DefaultCompactionRetention = 10 * time.Minute
)

type config struct {
	name          string
	dataDir       string
	clientAddr    string // host:port to listen on; empty: loopback, free port
	peerAddr      string
	advClientAddr string
	advPeerAddr   string
	cluster       []Member
	clusterToken  string
	existing      bool         // join a running cluster instead of bootstrapping one
	logger        *zap.Logger  // etcd's logs
	log           *slog.Logger // this package's records
	meter         metric.MeterProvider
	compaction    compaction
	quota         int64
	clientTLS     *TLSFiles
	peerTLS       *TLSFiles
	rootPassword  string
	skipAuthSetup bool // another member of the cluster being started does it
	allowInsecure bool
	heartbeat     time.Duration
	election      time.Duration
	metricsAddr   *string // nil: no metrics listener of its own
	defrag        DefragPolicy
	nospace       NoSpaceRecovery
	snapshots     *SnapshotSchedule
	handOverAbove time.Duration // 0: one election timeout; tests change it
}

type compaction struct {
	mode      string // "periodic", "revision" or "" for none
	retention string
}

func newConfig(opts []Option) config {
	c := config{
		name:       DefaultName,
		logger:     zap.NewNop(),
		log:        discardLog,
		compaction: compaction{mode: "periodic", retention: DefaultCompactionRetention.String()},
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithName sets the member's name, which must be unique in its cluster.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithDataDir keeps the member's data in dir, so that a member started again
// on the same dir recovers everything. Without it the data lives in a
// temporary directory that Close removes.
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithClientAddr sets the host:port clients connect to. Port 0 or no option
// picks a free port on 127.0.0.1. A host other than loopback is refused
// unless client TLS is configured or WithInsecureNonLoopback is given.
func WithClientAddr(hostport string) Option { return func(c *config) { c.clientAddr = hostport } }

// WithPeerAddr sets the host:port other members connect to, with the same
// loopback rule as WithClientAddr (peer TLS lifts it).
func WithPeerAddr(hostport string) Option { return func(c *config) { c.peerAddr = hostport } }

// WithAdvertiseClientAddr sets the client address published to the cluster,
// for a member that listens on an unspecified address such as 0.0.0.0:
// without it such a member publishes loopback, reachable from this host only.
func WithAdvertiseClientAddr(hostport string) Option {
	return func(c *config) { c.advClientAddr = hostport }
}

// WithAdvertisePeerAddr sets the peer address published to the cluster, as
// WithAdvertiseClientAddr does for clients.
func WithAdvertisePeerAddr(hostport string) Option {
	return func(c *config) { c.advPeerAddr = hostport }
}

// WithCluster bootstraps a new multi-member cluster statically: every member
// is started with the same token and member list, and this member's name
// (WithName) must be one of them. Its peer address defaults to the one listed.
func WithCluster(token string, members ...Member) Option {
	return func(c *config) {
		c.clusterToken = token
		c.cluster = append([]Member(nil), members...)
	}
}

// WithLogger sends etcd's logs and this package's own records (state
// changes only: a member joined or left, a defragmentation started or
// finished, a NOSPACE alarm raised or recovered, a snapshot taken or failed)
// to lg. By default, or with nil, both are discarded. The records' attribute
// keys are the Key* constants.
func WithLogger(lg *slog.Logger) Option {
	return func(c *config) {
		c.log, c.logger = discardLog, zap.NewNop()
		if lg != nil {
			c.log, c.logger = lg, zap.New(slogCore{h: lg.Handler()})
		}
	}
}

// WithZapLogger is WithLogger for a zap logger, etcd's own: etcd's records
// reach it unchanged, and this package's go through a slog bridge.
func WithZapLogger(lg *zap.Logger) Option {
	return func(c *config) {
		c.log, c.logger = discardLog, zap.NewNop()
		if lg != nil {
			c.log, c.logger = slog.New(zapHandler{core: lg.Core()}), lg
		}
	}
}

// WithAutoCompaction keeps about retention of history: etcd periodically
// compacts away revisions older than that (--auto-compaction-mode=periodic).
// Zero turns auto-compaction off, and the history then grows until the
// backend quota is hit. The default is DefaultCompactionRetention.
func WithAutoCompaction(retention time.Duration) Option {
	return func(c *config) {
		c.compaction = compaction{}
		if retention > 0 {
			c.compaction = compaction{mode: "periodic", retention: retention.String()}
		}
	}
}

// WithRevisionCompaction keeps the last revs revisions of history instead of
// a time window.
func WithRevisionCompaction(revs int64) Option {
	return func(c *config) {
		c.compaction = compaction{mode: "revision", retention: strconv.FormatInt(revs, 10)}
	}
}

// WithQuotaBackendBytes sets the size of the database file at which the
// backend raises a NOSPACE alarm and refuses writes. Zero keeps etcd's
// default (2 GiB). The file never shrinks by itself: the defragmentation
// policy (WithDefragPolicy) keeps it from growing into the quota.
func WithQuotaBackendBytes(n int64) Option { return func(c *config) { c.quota = n } }

// WithClientTLS serves clients over TLS with the given files.
func WithClientTLS(f TLSFiles) Option { return func(c *config) { c.clientTLS = &f } }

// WithPeerTLS encrypts and authenticates traffic between members.
func WithPeerTLS(f TLSFiles) Option { return func(c *config) { c.peerTLS = &f } }

// WithAuth turns on etcd authentication with a root user of the given
// password, created on first start. Server.Client logs in as root.
func WithAuth(rootPassword string) Option { return func(c *config) { c.rootPassword = rootPassword } }

// WithInsecureNonLoopback allows plain-text listeners on addresses other than
// loopback. Anyone who can reach them can read and write every key.
func WithInsecureNonLoopback() Option { return func(c *config) { c.allowInsecure = true } }

// WithTimings sets the Raft heartbeat interval and election timeout
// (etcd's defaults are 100 ms and 1 s; zero keeps each).
func WithTimings(heartbeat, election time.Duration) Option {
	return func(c *config) { c.heartbeat, c.election = heartbeat, election }
}

// WithExistingCluster starts a member that was added to a running cluster
// beforehand ("etcdctl member add"): it fetches the cluster's state from its
// peers instead of bootstrapping. WithCluster lists the members as member add
// printed them, this one included. Join does the adding and starting in one.
func WithExistingCluster() Option { return func(c *config) { c.existing = true } }

// WithMetricsAddr serves etcd's own Prometheus /metrics (and /health) on a
// listener of its own at hostport, besides the client port, which serves
// them too. Port 0 picks a free port; Server.MetricsURL tells which. Like
// every listener it stays on loopback unless client TLS is configured (it
// then serves https with the client certificate) or WithInsecureNonLoopback
// is given.
func WithMetricsAddr(hostport string) Option {
	return func(c *config) { c.metricsAddr = &hostport }
}

// WithDefragPolicy replaces the default defragmentation policy (see
// DefragPolicy); DefragPolicy{Disabled: true} turns it off.
func WithDefragPolicy(p DefragPolicy) Option { return func(c *config) { c.defrag = p } }

// WithNoSpaceRecovery replaces the default NOSPACE recovery (see
// NoSpaceRecovery); NoSpaceRecovery{Disabled: true} leaves a NOSPACE alarm to
// the operator.
func WithNoSpaceRecovery(r NoSpaceRecovery) Option { return func(c *config) { c.nospace = r } }

// WithSnapshots takes a snapshot of the member's data on a schedule (see
// SnapshotSchedule). Without it none is taken.
func WithSnapshots(s SnapshotSchedule) Option { return func(c *config) { c.snapshots = &s } }

// WithMeterProvider records this package's metrics (defragmentations,
// snapshots, NOSPACE recoveries, database size) with mp. By default, or with
// nil, the global provider of go.opentelemetry.io/otel, a no-op until the
// application installs one. etcd's own metrics are Prometheus': see
// WithMetricsAddr.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.meter = mp } }
