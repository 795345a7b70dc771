package goplugin

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// handshake runs a TLS handshake between client and server configurations over
// an in-memory connection and returns the server's view and each side's error.
func handshake(t *testing.T, client, server *tls.Config) (st tls.ConnectionState, cerr, serr error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := tls.Server(b, server)
	done := make(chan error, 1)
	go func() {
		err := srv.HandshakeContext(ctx)
		if err == nil {
			// TLS 1.3 servers learn of a rejected server certificate only
			// from the client's alert; read to receive it.
			_, err = srv.Read(make([]byte, 1))
		}
		done <- err
	}()
	cl := tls.Client(a, client)
	cerr = cl.HandshakeContext(ctx)
	if cerr == nil {
		_, cerr = cl.Write([]byte{1})
	}
	if cerr != nil {
		_ = a.Close()
	}
	serr = <-done
	return srv.ConnectionState(), cerr, serr
}

func TestMutualTLSConfigs(t *testing.T) {
	host, env, err := newMutualTLS()
	if err != nil {
		t.Fatal(err)
	}
	child, err := childTLS(env)
	if err != nil {
		t.Fatal(err)
	}
	st, cerr, serr := handshake(t, host, child)
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: host %v, child %v", cerr, serr)
	}
	if st.Version != tls.VersionTLS13 || len(st.PeerCertificates) != 1 {
		t.Fatalf("child sees version %x with %d peer certificates, want TLS 1.3 with the host's", st.Version, len(st.PeerCertificates))
	}
	if !st.PeerCertificates[0].Equal(host.Certificates[0].Leaf) {
		t.Error("the child's peer certificate is not the host's")
	}
	if k, ok := st.PeerCertificates[0].PublicKey.(*ecdsa.PublicKey); !ok || k.Curve.Params().BitSize != 256 {
		t.Errorf("host key %T, want ECDSA P-256", st.PeerCertificates[0].PublicKey)
	}

	// The child refuses a host without a certificate, or with another start's.
	other, otherEnv, err := newMutualTLS()
	if err != nil {
		t.Fatal(err)
	}
	noCert := host.Clone()
	noCert.Certificates = nil
	if _, _, serr := handshake(t, noCert, child); serr == nil {
		t.Error("child accepted a host without a certificate")
	}
	stranger := host.Clone()
	stranger.Certificates = other.Certificates
	if _, _, serr := handshake(t, stranger, child); serr == nil {
		t.Error("child accepted a host certificate it was not given")
	}
	// The host refuses a child serving another start's certificate.
	otherChild, err := childTLS(otherEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, cerr, _ := handshake(t, host, otherChild); cerr == nil {
		t.Error("host accepted a child certificate it did not make")
	}
}

func TestChildTLSBadEnv(t *testing.T) {
	_, env, err := newMutualTLS()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"empty": "", "garbage": "not PEM", "truncated": env[:len(env)/2]} {
		if _, err := childTLS(v); !errors.Is(err, errChildTLS) {
			t.Errorf("%s: childTLS = %v, want errChildTLS", name, err)
		}
	}
}

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
