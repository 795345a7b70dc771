package ibkr

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
	"github.com/scmhub/ibapi"
)

// scmhub/ibapi logs through one package-global zerolog logger that writes JSON to
// stderr. The adapter replaces it, once per process, with a logger writing into
// libSink, which hands each record to an hclog.Logger at Debug level and counts
// the decoder panics that end a session on a malformed message.

var (
	installOnce sync.Once
	libLogger   atomic.Pointer[hclog.Logger] // receives scmhub's records; nil: dropped
	// decoderPanics counts scmhub's "decoder panic" records: each one is a
	// session that a malformed message from the gateway ended.
	decoderPanics atomic.Int64
)

// installLibraryLogger routes scmhub's global logger into libSink. ibapi.SetLogger
// writes an unsynchronised package variable, so it runs once, before this
// package creates any EClient; a program that also drives scmhub directly must
// not call ibapi.SetLogger concurrently with New. SetConsoleWriter (which writes
// to stdout) is never called.
func installLibraryLogger() {
	installOnce.Do(func() {
		ibapi.SetLogger(zerolog.New(libSink{}))
	})
}

// setLibraryLogger makes l the receiver of scmhub's records (the last Adapter
// created with a logger wins: the library's logger is process-global) and
// returns the handle to pass to unsetLibraryLogger.
func setLibraryLogger(l hclog.Logger) *hclog.Logger {
	named := l.Named("ibapi")
	libLogger.Store(&named)
	return &named
}

// unsetLibraryLogger stops sending scmhub's records to h, if it still receives
// them: a closed Adapter's logger must not outlive it.
func unsetLibraryLogger(h *hclog.Logger) {
	if h != nil {
		libLogger.CompareAndSwap(h, nil)
	}
}

// libSink is the io.Writer under scmhub's zerolog logger.
type libSink struct{}

// Write implements io.Writer for one zerolog JSON record. It never fails, so a
// bad record cannot disturb scmhub.
func (libSink) Write(p []byte) (int, error) {
	level, msg, fields := parseLogRecord(p)
	if strings.HasPrefix(msg, "decoder panic") {
		decoderPanics.Add(1)
	}
	if lp := libLogger.Load(); lp != nil {
		(*lp).Debug(msg, append([]any{"zerolog_level", level}, fields...)...)
	}
	return len(p), nil
}

// parseLogRecord decodes one zerolog JSON record into its level, message and the
// remaining fields as hclog key/value pairs (sorted by key). Anything that is
// not a JSON object is returned whole as the message.
func parseLogRecord(p []byte) (level, msg string, fields []any) {
	var rec map[string]any
	if err := json.Unmarshal(p, &rec); err != nil {
		return "", strings.TrimSpace(string(p)), nil
	}
	level, _ = rec[zerolog.LevelFieldName].(string)
	msg, _ = rec[zerolog.MessageFieldName].(string)
	delete(rec, zerolog.LevelFieldName)
	delete(rec, zerolog.MessageFieldName)
	delete(rec, zerolog.TimestampFieldName)
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fields = append(fields, k, rec[k])
	}
	return level, msg, fields
}
