package embedded

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
)

const defaultClusterToken = "roster"

func (c config) validate() error {
	if c.name == "" || strings.ContainsAny(c.name, "=,/ ") {
		return fmt.Errorf("%w: member name %q must be non-empty without '=', ',', '/' or spaces", ErrInvalidConfig, c.name)
	}
	if len(c.cluster) > 0 {
		if _, ok := c.clusterPeer(); !ok {
			return fmt.Errorf("%w: member %q is not in the cluster list", ErrInvalidConfig, c.name)
		}
	}
	if err := c.validateRanges(); err != nil {
		return err
	}
	if err := checkListen("client", c.clientAddr, c.clientTLS != nil, c.allowInsecure); err != nil {
		return err
	}
	if c.metricsAddr != nil {
		if err := checkListen("metrics", *c.metricsAddr, c.clientTLS != nil, c.allowInsecure); err != nil {
			return err
		}
	}
	return checkListen("peer", c.peerAddr, c.peerTLS != nil, c.allowInsecure)
}

// validateRanges applies the zero rule: zero means the default, a negative
// value is an error.
func (c config) validateRanges() error {
	switch {
	case c.quota < 0:
		return fmt.Errorf("%w: backend quota %d is negative", ErrInvalidConfig, c.quota)
	case c.heartbeat < 0 || c.election < 0:
		return fmt.Errorf("%w: timings %v, %v: negative", ErrInvalidConfig, c.heartbeat, c.election)
	}
	hb, el := cmp.Or(c.heartbeat, 100*time.Millisecond), cmp.Or(c.election, time.Second)
	if el < 5*hb {
		return fmt.Errorf("%w: election timeout %v is less than five heartbeats of %v", ErrInvalidConfig, el, hb)
	}
	if c.compaction.mode == "revision" {
		if n, err := strconv.ParseInt(c.compaction.retention, 10, 64); err != nil || n < 0 {
			return fmt.Errorf("%w: revision compaction retention %s is negative", ErrInvalidConfig, c.compaction.retention)
		}
	}
	if err := c.defrag.validate(); err != nil {
		return err
	}
	if c.snapshots != nil {
		return c.snapshots.validate()
	}
	return nil
}

// checkListen refuses plain text beyond loopback: etcd has no access control
// unless auth is on, and even then passwords would cross the wire in clear.
func checkListen(kind, hostport string, tls, allow bool) error {
	if hostport == "" || tls || allow {
		return nil
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%w: %s address %q: %v", ErrInvalidConfig, kind, hostport, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %s address %q is not loopback and has no TLS; configure TLS or pass WithInsecureNonLoopback", ErrInsecureListen, kind, hostport)
}

func (c config) clusterPeer() (string, bool) {
	for _, m := range c.cluster {
		if m.Name == c.name {
			return m.PeerURL, true
		}
	}
	return "", false
}

// resolvePorts fills in free ports where none were given, and returns the
// addresses it picked (which may be picked anew after a clash).
func (c config) resolvePorts() (config, []string, error) {
	if c.peerAddr == "" {
		if u, ok := c.clusterPeer(); ok {
			c.peerAddr = hostOf(u)
		}
	}
	addrs := []*string{&c.clientAddr, &c.peerAddr}
	if c.metricsAddr != nil {
		m := *c.metricsAddr
		c.metricsAddr = &m // a copy: resolving must not change the caller's config
		addrs = append(addrs, c.metricsAddr)
	}
	var chosen []string
	for _, addr := range addrs {
		var picked bool
		var err error
		if *addr, picked, err = withFreePort(*addr); err != nil {
			return c, nil, err
		}
		if picked {
			chosen = append(chosen, *addr)
		}
	}
	return c, chosen, nil
}

func withFreePort(hostport string) (string, bool, error) {
	if hostport == "" {
		hostport = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", false, fmt.Errorf("%w: address %q: %v", ErrInvalidConfig, hostport, err)
	}
	if port != "0" {
		return hostport, false, nil
	}
	p, err := freePort(host)
	if err != nil {
		return "", false, err
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), true, nil
}

func scheme(tls *TLSFiles) string {
	if tls != nil {
		return "https"
	}
	return "http"
}

func (c config) clientURL() string {
	addr := reachable(c.clientAddr)
	if c.advClientAddr != "" {
		addr = c.advClientAddr
	}
	return scheme(c.clientTLS) + "://" + addr
}

func (c config) peerURL() string {
	addr := reachable(c.peerAddr)
	if c.advPeerAddr != "" {
		addr = c.advPeerAddr
	}
	return scheme(c.peerTLS) + "://" + addr
}

// reachable turns a listen address on all interfaces (0.0.0.0, ::) into the
// loopback address of the same family: "0.0.0.0" is no address to dial, and
// without WithAdvertise*Addr loopback is the one address surely served.
func reachable(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil || !ip.IsUnspecified():
		return hostport
	case ip.To4() != nil:
		return net.JoinHostPort("127.0.0.1", port)
	default:
		return net.JoinHostPort("::1", port)
	}
}

func (c config) metricsURL() string {
	if c.metricsAddr == nil {
		return ""
	}
	return scheme(c.clientTLS) + "://" + reachable(*c.metricsAddr)
}

func (c config) initialCluster() string {
	if len(c.cluster) == 0 {
		return c.name + "=" + c.peerURL()
	}
	parts := make([]string, len(c.cluster))
	for i, m := range c.cluster {
		parts[i] = m.Name + "=" + m.PeerURL
	}
	return strings.Join(parts, ",")
}

// hostOf returns the host:port of a URL, or the text itself if it is none.
func hostOf(u string) string {
	if pu, err := url.Parse(u); err == nil && pu.Host != "" {
		return pu.Host
	}
	return u
}

func mustURL(s string) (url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return url.URL{}, fmt.Errorf("%w: URL %q: %v", ErrInvalidConfig, s, err)
	}
	return *u, nil
}

func (c config) etcdConfig(dataDir string, register func(*grpc.Server)) (*embed.Config, error) {
	ec := embed.NewConfig()
	ec.Name = c.name
	ec.Dir = dataDir
	urls := map[*[]url.URL]string{
		&ec.ListenClientUrls:    scheme(c.clientTLS) + "://" + c.clientAddr,
		&ec.AdvertiseClientUrls: c.clientURL(),
		&ec.ListenPeerUrls:      scheme(c.peerTLS) + "://" + c.peerAddr,
		&ec.AdvertisePeerUrls:   c.peerURL(),
	}
	for dst, s := range urls {
		u, err := mustURL(s)
		if err != nil {
			return nil, err
		}
		*dst = []url.URL{u}
	}
	if c.metricsAddr != nil {
		u, err := mustURL(scheme(c.clientTLS) + "://" + *c.metricsAddr)
		if err != nil {
			return nil, err
		}
		ec.ListenMetricsUrls = []url.URL{u}
	}
	ec.InitialCluster = c.initialCluster()
	ec.InitialClusterToken = c.clusterToken
	if ec.InitialClusterToken == "" {
		ec.InitialClusterToken = defaultClusterToken
	}
	ec.ClusterState = embed.ClusterStateFlagNew
	if c.existing {
		ec.ClusterState = embed.ClusterStateFlagExisting
	}
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(c.logger)
	ec.AutoCompactionMode = c.compaction.mode
	ec.AutoCompactionRetention = c.compaction.retention
	if c.compaction.mode == "" {
		ec.AutoCompactionMode, ec.AutoCompactionRetention = embed.CompactorModePeriodic, "0"
	}
	ec.QuotaBackendBytes = c.quota
	if c.clientTLS != nil {
		ec.ClientTLSInfo = tlsInfo(*c.clientTLS)
	}
	if c.peerTLS != nil {
		ec.PeerTLSInfo = tlsInfo(*c.peerTLS)
	}
	if c.heartbeat > 0 {
		ec.TickMs = uint(c.heartbeat / time.Millisecond)
	}
	if c.election > 0 {
		ec.ElectionMs = uint(c.election / time.Millisecond)
	}
	ec.ServiceRegister = register
	return ec, nil
}

func tlsInfo(f TLSFiles) transport.TLSInfo {
	return transport.TLSInfo{
		CertFile:       f.CertFile,
		KeyFile:        f.KeyFile,
		TrustedCAFile:  f.TrustedCAFile,
		ClientCertAuth: f.ClientCertAuth,
	}
}

// startError names the address when a listener could not bind.
func startError(c config, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		kind, addr := "client", c.clientAddr
		if strings.Contains(err.Error(), c.peerAddr) {
			kind, addr = "peer", c.peerAddr
		}
		return &portInUseError{kind: kind, addr: addr, err: err}
	}
	return fmt.Errorf("embedded: start member %q: %w", c.name, err)
}

// portInUseError is ErrPortInUse for one listen address.
type portInUseError struct {
	kind, addr string
	err        error
}

func (e *portInUseError) Error() string {
	return fmt.Sprintf("%v: %s address %s: %v", ErrPortInUse, e.kind, e.addr, e.err)
}

func (e *portInUseError) Is(target error) bool { return target == ErrPortInUse }
func (e *portInUseError) Unwrap() error        { return e.err }
