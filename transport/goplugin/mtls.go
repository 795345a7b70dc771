package goplugin

import (
	"crypto/tls"
	"os"

	"github.com/brokerkit/brokerkit/internal/grpclink"
)

// envTLS carries, from host to child, the child's certificate and private key and
// the host's certificate (grpclink.MutualTLS, PEM). The child reads it once, at
// startup, and removes it from its environment so that processes it starts do
// not inherit the key.
const envTLS = "BROKERKIT_GOPLUGIN_TLS"

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
	return grpclink.ChildTLS(v)
}
