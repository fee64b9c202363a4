package deploygen_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
)

// No container engine runs here, so images are not built. Instead: every service of the table
// (and the operator) names a Dockerfile that exists, that Dockerfile builds the service's cmd/
// the way the test does, ends in a distroless non-root image, and the build itself succeeds —
// statically linked where the Dockerfile says CGO_ENABLED=0.
func TestDockerfileBuildTargets(t *testing.T) {
	table, deploy := loadTable(t)
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	type target struct{ name, dockerfile string }
	targets := []target{{"operator", "Dockerfile"}}
	for _, s := range table.Services {
		df := s.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		targets = append(targets, target{s.Name, df})
	}
	out := t.TempDir()
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join(deploy, "docker", tg.dockerfile))
			if err != nil {
				t.Fatalf("%s names deploy/docker/%s: %v", tg.name, tg.dockerfile, err)
			}
			cgo := checkDockerfile(t, tg.dockerfile, string(text))
			if _, err := os.Stat(filepath.Join(root, "services", tg.name, "cmd", tg.name, "main.go")); err != nil {
				t.Fatalf("build target services/%s/cmd/%s: %v", tg.name, tg.name, err)
			}
			bin := filepath.Join(out, tg.name)
			cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./services/"+tg.name+"/cmd/"+tg.name)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build (CGO_ENABLED=%s): %v\n%s", cgo, err, msg)
			}
			if cgo == "0" && dynamic(t, bin) {
				t.Errorf("%s is dynamically linked, but its image has no libc", tg.name)
			}
		})
	}
}

var (
	buildLine = regexp.MustCompile(`CGO_ENABLED=([01]) go build [^\n]*-o /out/app "\./services/\$\{SERVICE\}/cmd/\$\{SERVICE\}"`)
	fromLine  = regexp.MustCompile(`(?m)^FROM (\S+)`)
)

// checkDockerfile asserts the Dockerfile's shape and returns its CGO_ENABLED.
func checkDockerfile(t *testing.T, name, text string) string {
	t.Helper()
	m := buildLine.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s: no `CGO_ENABLED=N go build ... -o /out/app \"./services/${SERVICE}/cmd/${SERVICE}\"` step", name)
	}
	froms := fromLine.FindAllStringSubmatch(text, -1)
	final := froms[len(froms)-1][1]
	if !strings.HasPrefix(final, "gcr.io/distroless/") || !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("%s: final stage FROM %s, want a distroless :nonroot image", name, final)
	}
	if m[1] == "0" && !strings.Contains(final, "/static-") {
		t.Errorf("%s: a static binary belongs on distroless/static, not %s", name, final)
	}
	for _, want := range []string{"COPY --from=build /out/app /app", "USER 65532:65532", `ENTRYPOINT ["/app"]`} {
		if !strings.Contains(text, want) {
			t.Errorf("%s: missing %q", name, want)
		}
	}
	return m[1]
}

// dynamic reports whether an ELF binary asks for a dynamic loader.
func dynamic(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}
