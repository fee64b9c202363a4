package deploygen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const header = "# Generated from deploy/services.yaml by services/operator/cmd/deploygen. DO NOT EDIT.\n"

// GeneratedDirs are the directories (relative to deploy/) that Generate owns entirely.
var GeneratedDirs = []string{"base", filepath.Join("components", "images")}

// Files renders every generated file, keyed by its path relative to deploy/.
func (t *Table) Files() (map[string][]byte, error) {
	files := map[string][]byte{}
	add := func(path string, objs ...any) error {
		b, err := toYAML(objs...)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		files[path] = b
		return nil
	}
	base := []string{"namespace.yaml", "config.yaml"}
	if err := add("base/namespace.yaml", &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: t.Namespace, Labels: map[string]string{"istio-injection": "enabled"}},
	}); err != nil {
		return nil, err
	}
	if err := add("base/config.yaml", &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "bourse-config"},
		Data:       t.Config,
	}); err != nil {
		return nil, err
	}
	var images []any
	for _, s := range t.Services {
		dir := "base/" + s.Name + "/"
		parts := []string{"workload.yaml", "service.yaml", "pdb.yaml", "istio.yaml"}
		if err := add(dir+"workload.yaml", t.workloads(s)...); err != nil {
			return nil, err
		}
		if err := add(dir+"service.yaml", t.services(s)...); err != nil {
			return nil, err
		}
		if err := add(dir+"pdb.yaml", t.pdb(s)); err != nil {
			return nil, err
		}
		if err := add(dir+"istio.yaml", t.virtualService(s), t.destinationRule(s)); err != nil {
			return nil, err
		}
		if s.Autoscale != nil {
			parts = append(parts, "hpa.yaml")
			if err := add(dir+"hpa.yaml", t.hpa(s)); err != nil {
				return nil, err
			}
		}
		if c := t.claims(s); len(c) > 0 {
			parts = append(parts, "pvc.yaml")
			if err := add(dir+"pvc.yaml", c...); err != nil {
				return nil, err
			}
		}
		// The namespace here too, so a service directory also applies on its own.
		if err := add(dir+"kustomization.yaml", kustomization(map[string]any{"namespace": t.Namespace, "resources": parts})); err != nil {
			return nil, err
		}
		base = append(base, s.Name)
		images = append(images, map[string]any{"name": t.Image(s), "newName": t.Registry + "/" + s.Name, "newTag": t.Tag})
	}
	if err := add("base/kustomization.yaml", kustomization(map[string]any{
		"namespace": t.Namespace,
		"resources": base,
	})); err != nil {
		return nil, err
	}
	// A component, so an overlay opts in to pulling from the registry.
	if err := add("components/images/kustomization.yaml", map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1alpha1",
		"kind":       "Component",
		"images":     images,
	}); err != nil {
		return nil, err
	}
	return files, nil
}

func kustomization(fields map[string]any) map[string]any {
	fields["apiVersion"] = "kustomize.config.k8s.io/v1beta1"
	fields["kind"] = "Kustomization"
	return fields
}

// toYAML writes objects as one multi-document YAML file, without the empty status and null
// creationTimestamp that typed objects carry.
func toYAML(objs ...any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	for i, o := range objs {
		raw, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		delete(m, "status")
		prune(m)
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(y)
	}
	return buf.Bytes(), nil
}

// prune drops null values and empty maps left by zero-valued typed fields.
func prune(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			prune(e)
			if e == nil {
				delete(x, k)
			} else if m, ok := e.(map[string]any); ok && len(m) == 0 && k != "emptyDir" {
				delete(x, k)
			}
		}
	case []any:
		for _, e := range x {
			prune(e)
		}
	}
}

// Write replaces the generated directories under deployDir with files.
func Write(deployDir string, files map[string][]byte) error {
	for _, d := range GeneratedDirs {
		if err := os.RemoveAll(filepath.Join(deployDir, d)); err != nil {
			return err
		}
	}
	for path, data := range files {
		full := filepath.Join(deployDir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Stale lists the differences between files and what is on disk under deployDir's generated
// directories: changed, missing and extra files.
func Stale(deployDir string, files map[string][]byte) ([]string, error) {
	var diffs []string
	seen := map[string]bool{}
	for _, d := range GeneratedDirs {
		err := filepath.WalkDir(filepath.Join(deployDir, d), func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(deployDir, path)
			rel = filepath.ToSlash(rel)
			seen[rel] = true
			want, ok := files[rel]
			if !ok {
				diffs = append(diffs, "extra "+rel)
				return nil
			}
			got, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				diffs = append(diffs, "changed "+rel)
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	for path := range files {
		if !seen[path] {
			diffs = append(diffs, "missing "+path)
		}
	}
	return diffs, nil
}

// Describe is a one-line summary for the generator's output.
func Describe(files map[string][]byte) string {
	var dirs []string
	for p := range files {
		if strings.HasSuffix(p, "/kustomization.yaml") {
			dirs = append(dirs, strings.TrimSuffix(p, "/kustomization.yaml"))
		}
	}
	return fmt.Sprintf("%d files in %d kustomizations", len(files), len(dirs))
}
