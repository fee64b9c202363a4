package docstest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// TestReadmeExamples starts the platform as `make run` does, on a fresh run directory, and runs every
// shell example of every README in the repository, in order, checking each against its comment.
func TestReadmeExamples(t *testing.T) {
	m := testenv.StartMakeRun(t, 10*time.Minute)
	root := m.Root
	readmes := readmeFiles(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()

	ran := 0
	for _, rel := range readmes {
		md, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := Blocks(string(md))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		results, err := Run(ctx, root, blocks, "BOURSE_RUN_DIR="+m.RunDir)
		for _, r := range results {
			ran++
			if why := r.Failure(); why != "" {
				t.Errorf("%s:%d: %s\n  %s\n  output:\n%s", rel, r.Command.Line, why,
					strings.ReplaceAll(r.Command.Text, "\n", "\n  "), indent(r.Output))
			}
		}
		if err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
	if ran == 0 {
		t.Fatal("no README example ran")
	}
	t.Logf("%d README commands ran against make run", ran)
}

// readmeFiles lists the repository's READMEs that git tracks: the top one first, then the rest in
// path order.
func readmeFiles(t *testing.T, root string) []string {
	out, err := exec.Command("git", "-C", root, "ls-files", "README.md", "*/README.md").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	files := strings.Fields(string(out))
	slices.SortFunc(files, func(a, b string) int {
		if a == "README.md" || b == "README.md" {
			return map[bool]int{true: -1, false: 1}[a == "README.md"]
		}
		return strings.Compare(a, b)
	})
	return files
}

func indent(s string) string {
	if len(s) > 4000 {
		s = s[:4000] + "\n…"
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
