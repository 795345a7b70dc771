package grpclink

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// handshake runs a TLS handshake between client and server configurations over
// a Unix socket and returns the server's view and each side's error.
func handshake(t *testing.T, client, server *tls.Config) (st tls.ConnectionState, cerr, serr error) {
	t.Helper()
	// A buffered socket, not net.Pipe: each side may write an alert while the
	// other is still writing its flight.
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
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
	host, env, err := MutualTLS()
	if err != nil {
		t.Fatal(err)
	}
	child, err := ChildTLS(env)
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
	other, otherEnv, err := MutualTLS()
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
	otherChild, err := ChildTLS(otherEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, cerr, _ := handshake(t, host, otherChild); cerr == nil {
		t.Error("host accepted a child certificate it did not make")
	}
}

func TestChildTLSBadEnv(t *testing.T) {
	_, env, err := MutualTLS()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"empty": "", "garbage": "not PEM", "truncated": env[:len(env)/2]} {
		if _, err := ChildTLS(v); !errors.Is(err, ErrChildTLS) {
			t.Errorf("%s: childTLS = %v, want ErrChildTLS", name, err)
		}
	}
}
