package ociimage_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
	"github.com/bourse-dev/bourse/services/operator/internal/ociimage"
)

// Builds the discovery service as its Dockerfile does (static), packs it into an image tarball
// without a daemon, reads the tarball back and inspects it: entrypoint, non-root user, the
// binary itself at /app, and a reproducible digest.
func TestImageTarball(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "discovery")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./services/discovery/cmd/discovery")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}

	img, err := ociimage.Build(bin, "discovery")
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("bourse/discovery:test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "discovery.tar")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}

	loaded, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("read the tarball back: %v", err)
	}
	cfg, err := loaded.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Config.Entrypoint; len(got) != 1 || got[0] != "/app" {
		t.Errorf("entrypoint = %v, want [/app]", got)
	}
	if u := cfg.Config.User; u == "" || u == "root" || strings.HasPrefix(u, "0:") || u == "0" {
		t.Errorf("user = %q, want a non-root uid", u)
	} else if u != ociimage.NonRoot {
		t.Errorf("user = %q, want %s", u, ociimage.NonRoot)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform = %s/%s", cfg.OS, cfg.Architecture)
	}
	layers, err := loaded.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d (%v), want 1", len(layers), err)
	}

	got, mode := extract(t, mutate.Extract(loaded), "app")
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("/app in the image (%d bytes) is not the built binary (%d bytes)", len(got), len(want))
	}
	if mode&0o111 == 0 {
		t.Errorf("/app mode %o is not executable", mode)
	}
	// The file is the service: it runs and knows the runtime's flags.
	app := filepath.Join(dir, "app")
	if err := os.WriteFile(app, got, 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(app, "-h").CombinedOutput()
	if !bytes.Contains(out, []byte("-grpc-addr")) {
		t.Errorf("extracted /app -h printed no -grpc-addr flag:\n%s", out)
	}

	// Same binary, same image: the digest is reproducible.
	again, err := ociimage.Build(bin, "discovery")
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("digests differ for the same binary: %s vs %s", d1, d2)
	}
}

func extract(t *testing.T, rc io.ReadCloser, name string) ([]byte, int64) {
	t.Helper()
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("no %s in the image", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b, h.Mode
		}
	}
}
