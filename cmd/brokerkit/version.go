package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/transport/goplugin"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

const scmhubPath = "github.com/scmhub/ibapi"

// versionInfo is what `brokerkit version` prints.
type versionInfo struct {
	Version           string `json:"version"`  // the module version, "(devel)" for a build from a checkout
	Commit            string `json:"commit"`   // the VCS revision, "" if the build did not record it
	Modified          bool   `json:"modified"` // the checkout had uncommitted changes
	Go                string `json:"go"`
	Platform          string `json:"platform"`
	Scmhub            string `json:"scmhub_ibapi"`
	TWSClientVersions string `json:"tws_client_versions"` // the API versions offered in the TWS handshake
	StdiojsonProtocol int    `json:"stdiojson_protocol"`
	GopluginProtocol  uint   `json:"goplugin_protocol"`
}

func currentVersion() versionInfo {
	v := versionInfo{Version: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Scmhub: "unknown",
		TWSClientVersions: fmt.Sprintf("v%d..v%d", ibapi.MIN_CLIENT_VER, ibapi.MAX_CLIENT_VER),
		StdiojsonProtocol: stdiojson.ProtocolVersion, GopluginProtocol: goplugin.Handshake.ProtocolVersion}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Version = bi.Main.Version
	for _, d := range bi.Deps {
		if d.Path == scmhubPath {
			v.Scmhub = d.Version
			if d.Replace != nil {
				v.Scmhub += " => " + d.Replace.Path + " " + d.Replace.Version
			}
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	v := currentVersion()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	commit := v.Commit
	switch {
	case commit == "":
		commit = "not recorded (built with -buildvcs=false or outside a checkout)"
	case v.Modified:
		commit += " (modified)"
	}
	t := table{rows: [][]string{
		{"brokerkit", v.Version},
		{"commit", commit},
		{"go", v.Go + " " + v.Platform},
		{"scmhub/ibapi", v.Scmhub},
		{"TWS API client versions", v.TWSClientVersions},
		{"stdiojson protocol", fmt.Sprint(v.StdiojsonProtocol)},
		{"goplugin protocol", fmt.Sprint(v.GopluginProtocol)},
	}}
	_, err := fmt.Fprintln(stdout, t)
	return err
}
