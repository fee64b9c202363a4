// Command bourse drives the platform from a terminal: it finds the services through Consul, calls
// them with the generated clients, prints tables for people and JSON or YAML for scripts, and exits
// with a code a script can branch on (see `bourse --help`).
package main

import (
	"os"

	"github.com/bourse-dev/bourse/cmd/bourse/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
