//go:build !linux

package goplugin

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
)

// guardStdout is Linux only: elsewhere, stray stdout writes before the handshake
// break it, as in plain go-plugin (issue #199).
func guardStdout(hclog.Logger) {}

// watchHost polls the parent pid and exits once the host is gone.
func watchHost(log hclog.Logger, b broker.Broker) {
	go watchParent(context.Background(), log, os.Getppid(), func(code int) { exitChild(log, b, code) })
}
