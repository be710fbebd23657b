package embedded

import (
	"crypto/tls"
	"fmt"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ClientConfig is a clientv3 configuration for this member: its endpoint,
// TLS and, with WithAuth, root credentials. Adjust it and pass it to
// clientv3.New. Under TLS the member's own certificate doubles as the client
// certificate, so with ClientCertAuth it must allow client authentication
// (extended key usage clientAuth) besides serverAuth.
func (s *Server) ClientConfig() (clientv3.Config, error) {
	cfg := clientv3.Config{
		Endpoints:   s.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	}
	if s.cfg.clientTLS != nil {
		tc, err := clientTLS(*s.cfg.clientTLS)
		if err != nil {
			return cfg, err
		}
		cfg.TLS = tc
	}
	if s.cfg.rootPassword != "" {
		cfg.Username, cfg.Password = rootUser, s.cfg.rootPassword
	}
	return cfg, nil
}

// Client returns a new client connected to this member, configured as by
// ClientConfig. The caller closes it.
func (s *Server) Client() (*clientv3.Client, error) {
	cfg, err := s.ClientConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded: client for %q: %w", s.cfg.name, err)
	}
	return cli, nil
}

func clientTLS(f TLSFiles) (*tls.Config, error) {
	info := transport.TLSInfo{CertFile: f.CertFile, KeyFile: f.KeyFile, TrustedCAFile: f.TrustedCAFile}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("embedded: client TLS: %w", err)
	}
	return tc, nil
}
