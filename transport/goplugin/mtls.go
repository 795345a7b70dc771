package goplugin

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
	"os"
	"strings"
	"time"
)

// envTLS carries, from host to child, the child's certificate and private key and
// the host's certificate (PEM, in that order). The child reads it once, at
// startup, and removes it from its environment so that processes it starts do
// not inherit the key.
const envTLS = "BROKERKIT_GOPLUGIN_TLS"

// certValidity is how long a per-start certificate is valid. The host's
// connection is made once, right after the handshake, and never redialed.
const certValidity = 365 * 24 * time.Hour

// errChildTLS is returned when envTLS is set but unusable.
var errChildTLS = errors.New("goplugin: bad " + envTLS)

// newMutualTLS makes a fresh ECDSA P-256 key and self-signed certificate for
// each side, returns the host's TLS configuration (it presents its own
// certificate and trusts only the child's) and the value of envTLS for the
// child. P-256 keys are generated in microseconds where go-plugin's AutoMTLS
// P-521 keys take milliseconds on each side (see ADR 0004).
func newMutualTLS() (*tls.Config, string, error) {
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
		return nil, "", fmt.Errorf("goplugin: host key pair: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(childCert) {
		return nil, "", errors.New("goplugin: child certificate does not parse")
	}
	host := &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      roots,
		ServerName:   "localhost",
		MinVersion:   tls.VersionTLS13,
	}
	return host, string(childCert) + string(childKey) + string(hostCert), nil
}

// childTLSProvider is the child's plugin.ServeConfig.TLSProvider: with envTLS
// set it serves with the certificate the host made for it and requires the
// host's; without it, it returns nil and go-plugin decides (its AutoMTLS if the
// host asked for it, or no TLS).
func childTLSProvider() (*tls.Config, error) {
	v, ok := os.LookupEnv(envTLS)
	if !ok {
		return nil, nil
	}
	_ = os.Unsetenv(envTLS)
	return childTLS(v)
}

// childTLS parses envTLS's value into the child's TLS configuration.
func childTLS(v string) (*tls.Config, error) {
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
		return nil, fmt.Errorf("%w: want 2 certificates and 1 key, have %d and %d", errChildTLS, len(certs), len(keys))
	}
	pair, err := tls.X509KeyPair(certs[0], keys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errChildTLS, err)
	}
	clients := x509.NewCertPool()
	if !clients.AppendCertsFromPEM(certs[1]) {
		return nil, fmt.Errorf("%w: host certificate does not parse", errChildTLS)
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
		return nil, nil, fmt.Errorf("goplugin: TLS key: %w", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("goplugin: TLS serial: %w", err)
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
		return nil, nil, fmt.Errorf("goplugin: TLS certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("goplugin: TLS key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
