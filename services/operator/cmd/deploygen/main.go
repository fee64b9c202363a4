// Command deploygen writes deploy/base and deploy/components/images from deploy/services.yaml.
// Run it from the repository root after changing the services table.
package main

import (
	"flag"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/bourse-dev/bourse/services/operator/internal/deploygen"
)

func main() {
	deployDir := flag.String("deploy-dir", "deploy", "the repository's deploy/ directory")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	table, err := deploygen.Load(filepath.Join(*deployDir, "services.yaml"))
	if err != nil {
		log.Error("load services table", "err", err)
		os.Exit(1)
	}
	files, err := table.Files()
	if err != nil {
		log.Error("render", "err", err)
		os.Exit(1)
	}
	if err := deploygen.Write(*deployDir, files); err != nil {
		log.Error("write", "err", err)
		os.Exit(1)
	}
	log.Info("generated", "dir", *deployDir, "summary", deploygen.Describe(files))
}
