package server

import (
	"maps"
	"runtime/debug"
)

// Version is what the binary was built from: the module version when it has one, else the VCS
// revision (12 characters, "+dirty" when the tree had changes), else "dev".
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	return rev[:min(12, len(rev))] + dirty
}

// withVersion adds the binary's version to a service's Consul metadata, so `bourse status` and
// operators see what each instance runs.
func withVersion(meta map[string]string) map[string]string {
	out := maps.Clone(meta)
	if out == nil {
		out = map[string]string{}
	}
	if _, ok := out["version"]; !ok {
		out["version"] = Version()
	}
	return out
}
