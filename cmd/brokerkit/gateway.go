package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/brokerkit/brokerkit/fakes"
)

// runGateway serves the scripted fake gateway, or records a real one
// (--record FILE --upstream HOST:PORT [--redact]), or replays a recording
// (--replay FILE), until ctx is done.
func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway", stderr)
	listen := fs.String("listen", "127.0.0.1:4002", "address to listen on (port 0 picks a free port)")
	scriptPath := fs.String("script", "", "JSON script (default: the built-in demo script)")
	record := fs.String("record", "", "proxy to --upstream and write every frame both ways to this file on exit")
	upstream := fs.String("upstream", "", "with --record: the real TWS or IB Gateway, HOST:PORT")
	redact := fs.Bool("redact", false, "with --record: replace account ids in the recording")
	replay := fs.String("replay", "", "serve this recorded session instead of a script")
	maxVersion := fs.Int("max-server-version", 0, fmt.Sprintf(
		"highest TWS API server version to offer, %d..%d (default: the script's, else %d); clients get the highest inside their range too",
		fakes.MinServerVersion, fakes.MaxServerVersion, fakes.DefaultServerVersion))
	verbose := fs.Bool("v", false, "log every connection to stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	modes := 0
	for _, set := range []bool{*scriptPath != "", *record != "", *replay != ""} {
		if set {
			modes++
		}
	}
	switch {
	case modes > 1:
		return fmt.Errorf("%w: --script, --record and --replay exclude each other", errUsage)
	case *record != "" && *upstream == "":
		return fmt.Errorf("%w: --record needs --upstream HOST:PORT", errUsage)
	case *record == "" && (*upstream != "" || *redact):
		return fmt.Errorf("%w: --upstream and --redact go with --record", errUsage)
	case *maxVersion != 0 && (*record != "" || *replay != ""):
		return fmt.Errorf("%w: --max-server-version goes with a script, not --record or --replay", errUsage)
	case *maxVersion != 0 && (*maxVersion < fakes.MinServerVersion || *maxVersion > fakes.MaxServerVersion):
		return fmt.Errorf("%w: --max-server-version %d not in %d..%d", errUsage, *maxVersion, fakes.MinServerVersion, fakes.MaxServerVersion)
	}
	log := newLogger(stderr, *verbose).Named("gateway")
	var (
		addr string
		stop func() error
	)
	switch {
	case *record != "":
		rec, err := fakes.NewRecorder(*upstream, fakes.WithAddr(*listen), fakes.WithLogger(log))
		if err != nil {
			return err
		}
		addr = rec.Addr()
		stop = func() error {
			err := rec.Close()
			s := rec.Session()
			if *redact {
				s = s.Redact()
			}
			if serr := s.Save(*record); serr != nil {
				return errors.Join(err, serr)
			}
			fmt.Fprintf(stderr, "recorded %d connection(s) to %s\n", len(s.Connections), *record)
			return err
		}
	case *replay != "":
		s, err := fakes.LoadSession(*replay)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		rp, err := fakes.NewReplayer(s, fakes.WithAddr(*listen), fakes.WithLogger(log))
		if err != nil {
			return err
		}
		addr, stop = rp.Addr(), rp.Close
	default:
		script, err := loadScript(*scriptPath)
		if err != nil {
			return err
		}
		gw, err := fakes.NewGateway(script, fakes.WithAddr(*listen), fakes.WithLogger(log), fakes.WithMaxServerVersion(*maxVersion))
		if err != nil {
			return err
		}
		addr, stop = gw.Addr(), gw.Close
	}
	fmt.Fprintf(stdout, "listening on %s\n", addr)
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	<-ctx.Done()
	return stop()
}
