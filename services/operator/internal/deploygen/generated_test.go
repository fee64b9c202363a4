package deploygen_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/services/operator/internal/deploygen"
	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
)

func loadTable(t *testing.T) (*deploygen.Table, string) {
	t.Helper()
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	deploy := filepath.Join(root, "deploy")
	table, err := deploygen.Load(filepath.Join(deploy, "services.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return table, deploy
}

// The committed manifests are exactly what the services table generates.
func TestGeneratedManifestsAreCurrent(t *testing.T) {
	table, deploy := loadTable(t)
	files, err := table.Files()
	if err != nil {
		t.Fatal(err)
	}
	stale, err := deploygen.Stale(deploy, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Fatalf("deploy/ is not what deploy/services.yaml generates:\n  %s\nrun: go run ./services/operator/cmd/deploygen (from the repository root)",
			strings.Join(stale, "\n  "))
	}
	// Every service of the table has its directory in the base.
	for _, s := range table.Services {
		for _, f := range []string{"kustomization.yaml", "workload.yaml", "service.yaml", "pdb.yaml", "istio.yaml"} {
			if _, ok := files["base/"+s.Name+"/"+f]; !ok {
				t.Errorf("%s: no base/%s/%s", s.Name, s.Name, f)
			}
		}
	}
}
