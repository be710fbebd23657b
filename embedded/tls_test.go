package embedded_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// TestTLS runs a three-member cluster with TLS between members and towards
// clients, both demanding certificates signed by the test's CA.
func TestTLS(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "roster test CA")
	server := ca.issue(t, "member", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	server.ClientCertAuth = true
	c := embeddedtest.StartCluster(t, 3, embedded.WithClientTLS(server), embedded.WithPeerTLS(server))
	ctx := ctxT(t, 60*time.Second)

	t.Run("ServerClient", func(t *testing.T) {
		require.Contains(t, c.Members[0].Endpoints()[0], "https://")
		put(t, ctx, c.Members[0].Client(), "k", "v")
		// Read on another member: the write crossed the TLS peer links.
		requireValue(t, ctx, c.Members[2].Client(), "k", "v")
		// Removed asks the peers over the same links, with the member's
		// certificate.
		removed, err := c.Members[1].Server().Removed(ctx)
		require.NoError(t, err)
		require.False(t, removed)
	})

	t.Run("OwnClientCertificate", func(t *testing.T) {
		own := ca.issue(t, "client", x509.ExtKeyUsageClientAuth)
		tc, err := tlsClientConfig(own)
		require.NoError(t, err)
		cli := tlsClient(t, c.Endpoints(), tc)
		put(t, ctx, cli, "k2", "v2")
		requireValue(t, ctx, cli, "k2", "v2")
	})

	t.Run("NoClientCertificateRefused", func(t *testing.T) {
		tc := &tls.Config{RootCAs: ca.pool}
		for _, addr := range []string{hostport(t, c.Members[0].Endpoints()[0]), hostport(t, c.Members[0].Server().PeerURL())} {
			requireHandshakeRefused(t, addr, tc)
		}
		cli := tlsClient(t, c.Endpoints()[:1], tc)
		_, err := cli.Get(ctxT(t, time.Second), "k")
		require.Error(t, err)
	})

	t.Run("ForeignCertificateRefused", func(t *testing.T) {
		other := newCA(t, "another CA").issue(t, "intruder", x509.ExtKeyUsageClientAuth)
		tc, err := tlsClientConfig(other)
		require.NoError(t, err)
		tc.RootCAs = ca.pool
		requireHandshakeRefused(t, hostport(t, c.Members[1].Endpoints()[0]), tc)
	})

	t.Run("PlainTextRefused", func(t *testing.T) {
		cli := etcdtest.NewClient(t, "http://"+hostport(t, c.Members[0].Endpoints()[0]))
		_, err := cli.Get(ctxT(t, time.Second), "k")
		require.Error(t, err)
	})
}

func TestTLSAllowsNonLoopback(t *testing.T) {
	ca := newCA(t, "roster test CA")
	server := ca.issue(t, "member", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	ctx := ctxT(t, 30*time.Second)
	s, err := embedded.Start(ctx, embedded.WithClientAddr("0.0.0.0:0"), embedded.WithClientTLS(server))
	require.NoError(t, err, "client TLS lifts the loopback rule for the client listener")
	defer s.Close()
	cli, err := s.Client()
	require.NoError(t, err)
	defer cli.Close()
	put(t, ctx, cli, "k", "v")

	_, err = embedded.Start(ctx, embedded.WithPeerAddr("0.0.0.0:0"), embedded.WithClientTLS(server))
	require.ErrorIs(t, err, embedded.ErrInsecureListen, "but not for the peer listener")
}

// requireHandshakeRefused dials addr and expects the server to reject the
// client's certificate (or its absence) with a TLS alert.
func requireHandshakeRefused(t *testing.T, addr string, tc *tls.Config) {
	t.Helper()
	tc = tc.Clone()
	tc.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tc)
	if err == nil {
		// TLS 1.3: the server checks the client's certificate after the
		// client finished; the alert arrives on the first read.
		defer conn.Close()
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err = conn.Read(make([]byte, 1))
	}
	require.Error(t, err)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "server did not answer: %v", err)
	require.ErrorContains(t, err, "certificate")
}

func tlsClientConfig(f embedded.TLSFiles) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(f.TrustedCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}, nil
}

func tlsClient(t *testing.T, endpoints []string, tc *tls.Config) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// testCA issues certificates for loopback into a test's temp dir.
type testCA struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
	pool *x509.CertPool
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &testCA{dir: t.TempDir(), cert: cert, key: key, pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	ca.file = writePEM(t, ca.dir, "ca.pem", "CERTIFICATE", der)
	return ca
}

// issue makes a certificate for 127.0.0.1, ::1 and localhost.
func (ca *testCA) issue(t *testing.T, name string, usages ...x509.ExtKeyUsage) embedded.TLSFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return embedded.TLSFiles{
		CertFile:      writePEM(t, ca.dir, name+".pem", "CERTIFICATE", der),
		KeyFile:       writePEM(t, ca.dir, name+"-key.pem", "EC PRIVATE KEY", keyDER),
		TrustedCAFile: ca.file,
	}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}
