// Package ociimage builds a service image without a container engine, the way ko does: one
// layer holding the static binary as /app, on an empty base, run as the distroless "nonroot"
// user. It is for machines with no Docker daemon and no registry to pull a base from; the
// Dockerfiles in deploy/docker remain the way to build the distroless images.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// NonRoot is the user the image runs as (distroless's nonroot uid:gid).
const NonRoot = "65532:65532"

// Entrypoint is where the binary sits in the image.
const Entrypoint = "/app"

// Build makes an image whose only file is the binary at /app.
func Build(binary, service string) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarOf(data))), nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{Entrypoint}
	cfg.Config.User = NonRoot
	cfg.Config.WorkingDir = "/"
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.title": service}
	return mutate.ConfigFile(img, cfg)
}

// tarOf is a one-file layer. The timestamp is fixed so the same binary gives the same digest.
func tarOf(binary []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{
		Name:     Entrypoint[1:],
		Mode:     0o555,
		Size:     int64(len(binary)),
		Typeflag: tar.TypeReg,
		ModTime:  time.Unix(0, 0),
	})
	_, _ = tw.Write(binary)
	_ = tw.Close()
	return buf.Bytes()
}
