// Package grpclink holds the connection setup of the goplugin transport, the
// gRPC options and the per-start mutual TLS of host and child, so that bench
// can measure a bare gRPC echo set up exactly as the transport's connection.
package grpclink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// certValidity is how long a per-start certificate is valid. The host's
// connection is made once, right after the handshake, and never redialed.
const certValidity = 365 * 24 * time.Hour

// ErrChildTLS is returned by ChildTLS for material it cannot use.
var ErrChildTLS = errors.New("grpclink: bad child TLS material")

// MutualTLS makes a fresh ECDSA P-256 key and self-signed certificate for each
// side and returns the host's TLS configuration (it presents its own
// certificate and trusts only the child's) and the child's material (its
// certificate and key and the host's certificate, PEM) for ChildTLS.
// P-256 keys are generated in microseconds where go-plugin's AutoMTLS P-521
// keys take milliseconds on each side (see ADR 0004).
func MutualTLS() (*tls.Config, string, error) {
	hostCert, hostKey, err := selfSigned("brokerkit host", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, "", err
	}
	childCert, childKey, err := selfSigned("localhost", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, "", err
	}
	pair, err := tls.X509KeyPair(hostCert, hostKey)
	if err != nil {
		return nil, "", fmt.Errorf("grpclink: host key pair: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(childCert) {
		return nil, "", errors.New("grpclink: child certificate does not parse")
	}
	host := &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      roots,
		ServerName:   "localhost",
		MinVersion:   tls.VersionTLS13,
	}
	return host, string(childCert) + string(childKey) + string(hostCert), nil
}

// ChildTLS turns the child's material from MutualTLS into the child's TLS
// configuration: it serves its own certificate and requires the host's.
func ChildTLS(v string) (*tls.Config, error) {
	var certs, keys [][]byte
	rest := []byte(v)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		enc := pem.EncodeToMemory(b)
		switch {
		case b.Type == "CERTIFICATE":
			certs = append(certs, enc)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			keys = append(keys, enc)
		}
	}
	if len(certs) != 2 || len(keys) != 1 {
		return nil, fmt.Errorf("%w: want 2 certificates and 1 key, have %d and %d", ErrChildTLS, len(certs), len(keys))
	}
	pair, err := tls.X509KeyPair(certs[0], keys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChildTLS, err)
	}
	clients := x509.NewCertPool()
	if !clients.AppendCertsFromPEM(certs[1]) {
		return nil, fmt.Errorf("%w: host certificate does not parse", ErrChildTLS)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// selfSigned makes an ECDSA P-256 key and a self-signed certificate for name
// with the given extended key usage, both PEM-encoded.
func selfSigned(name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("grpclink: TLS key: %w", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("grpclink: TLS serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"brokerkit"}},
		DNSNames:              []string{name},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("grpclink: TLS certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("grpclink: TLS key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
