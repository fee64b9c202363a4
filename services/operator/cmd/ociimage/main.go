// Command ociimage writes a service image as an OCI/Docker image tarball without a container
// engine (`docker load -i` or `crane push` it). The binary must be static (CGO_ENABLED=0):
//
//	CGO_ENABLED=0 go build -trimpath -o /tmp/risk ./services/risk/cmd/risk
//	go run ./services/operator/cmd/ociimage -binary /tmp/risk -service risk -tag bourse/risk:dev -o risk.tar
package main

import (
	"flag"
	"log/slog"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bourse-dev/bourse/services/operator/internal/ociimage"
)

func main() {
	binary := flag.String("binary", "", "static service binary to put at /app")
	service := flag.String("service", "", "service name (image title label)")
	tag := flag.String("tag", "", "image reference recorded in the tarball, e.g. bourse/risk:dev")
	out := flag.String("o", "image.tar", "output tarball")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ref, err := name.NewTag(*tag)
	if err != nil || *binary == "" || *service == "" {
		log.Error("need -binary, -service and a valid -tag", "err", err)
		os.Exit(2)
	}
	img, err := ociimage.Build(*binary, *service)
	if err == nil {
		err = tarball.WriteToFile(*out, ref, img)
	}
	if err != nil {
		log.Error("build image", "err", err)
		os.Exit(1)
	}
	digest, _ := img.Digest()
	log.Info("wrote image", "file", *out, "tag", ref.String(), "digest", digest.String())
}
