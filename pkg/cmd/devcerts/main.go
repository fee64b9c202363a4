// Command devcerts writes a development PKI for mutual TLS: a CA (kept if it is already there) and,
// for each name given, <name>.crt and <name>.key naming that service (its Consul name), localhost,
// 127.0.0.1 and ::1, usable as both server and client certificate.
//
//	devcerts -dir .run/tls discovery risk matching inference consul client
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

func main() {
	dir := flag.String("dir", ".run/tls", "directory to write ca.crt, ca.key and <name>.crt/<name>.key into")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: devcerts [-dir DIR] NAME...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if _, err := tlsconfig.WriteDevPKI(*dir, flag.Args()...); err != nil {
		fmt.Fprintf(os.Stderr, "devcerts: %v\n", err)
		os.Exit(1)
	}
}
