package goplugin

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// peerCert is the child's certificate as the host's gRPC connection saw it.
func peerCert(t *testing.T, c *Client) (*x509.Certificate, credentials.AuthInfo) {
	t.Helper()
	var p peer.Peer
	if _, err := c.rpc.Ping(context.Background(), &pb.Empty{}, grpc.Peer(&p)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, p.AuthInfo
	}
	if !info.State.HandshakeComplete || len(info.State.PeerCertificates) == 0 {
		t.Fatalf("TLS state %+v", info.State)
	}
	return info.State.PeerCertificates[0], p.AuthInfo
}

func TestChildConnectionIsMutualTLS(t *testing.T) {
	curve := func(c *x509.Certificate) int {
		k, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok {
			return 0
		}
		return k.Curve.Params().BitSize
	}
	t.Run("default", func(t *testing.T) {
		c, _ := startChild(t, "mem")
		connect(t, c)
		cert, info := peerCert(t, c)
		if cert == nil {
			t.Fatalf("connection auth %v, want TLS", info)
		}
		if curve(cert) != 256 || cert.Subject.Organization[0] != "brokerkit" {
			t.Errorf("child certificate %v, P-%d; want brokerkit's P-256", cert.Subject, curve(cert))
		}
	})
	t.Run("go-plugin", func(t *testing.T) {
		c, _ := startChild(t, "mem", WithGoPluginAutoMTLS())
		connect(t, c)
		cert, info := peerCert(t, c)
		if cert == nil {
			t.Fatalf("connection auth %v, want TLS", info)
		}
		if curve(cert) != 521 {
			t.Errorf("child certificate %v, P-%d; want go-plugin's P-521", cert.Subject, curve(cert))
		}
	})
	t.Run("none", func(t *testing.T) {
		c, _ := startChild(t, "mem", WithoutAutoMTLS())
		connect(t, c)
		if cert, info := peerCert(t, c); cert != nil {
			t.Errorf("connection auth %v, want none", info)
		}
	})
}
