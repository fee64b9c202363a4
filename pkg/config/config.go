// Package config fills a flag.FlagSet from the command line and from BOURSE_* environment variables.
//
// A flag named "database-url" of service "risk" is read, in order of precedence, from the command
// line, then BOURSE_RISK_DATABASE_URL, then BOURSE_DATABASE_URL, then its default.
package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Parse parses args into fs and then sets every flag not given on the command line from the
// environment. Errors name the flag and the variable.
func Parse(fs *flag.FlagSet, service string, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return FromEnv(fs, service, os.LookupEnv)
}

// FromEnv sets every flag of fs that was not set explicitly from lookup.
func FromEnv(fs *flag.FlagSet, service string, lookup func(string) (string, bool)) error {
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || explicit[f.Name] {
			return
		}
		for _, name := range EnvNames(service, f.Name) {
			if v, ok := lookup(name); ok {
				if setErr := fs.Set(f.Name, v); setErr != nil {
					err = fmt.Errorf("environment %s: %w", name, setErr)
				}
				return
			}
		}
	})
	return err
}

// EnvNames lists the environment variables consulted for a flag, most specific first.
func EnvNames(service, flagName string) []string {
	suffix := envWord(flagName)
	if service == "" {
		return []string{"BOURSE_" + suffix}
	}
	return []string{"BOURSE_" + envWord(service) + "_" + suffix, "BOURSE_" + suffix}
}

func envWord(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s))
}

// List splits a comma-separated flag value into its non-empty, trimmed items.
func List(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
