package main

import (
	"runtime"
	"runtime/debug"

	"github.com/strata-tsdb/strata/api"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func buildInfo() api.BuildInfo {
	b := api.BuildInfo{Version: version, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.BuildDate = s.Value
			}
		}
	}
	return b
}
