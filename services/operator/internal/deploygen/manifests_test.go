package deploygen_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
)

// kustomizations lists every directory under deploy/ with a kustomization.yaml, except
// components, which only build as part of an overlay.
func kustomizations(t *testing.T, deploy string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(deploy, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		if strings.Contains(path, string(filepath.Separator)+"components"+string(filepath.Separator)) {
			return nil
		}
		dirs = append(dirs, filepath.Dir(path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// Every kustomization renders, and the real API server accepts every object it renders
// (server-side apply, dry run) with the Application and Istio CRDs installed.
func TestKustomizationsApplyServerSideDryRun(t *testing.T) {
	table, deploy := loadTable(t)
	env, err := kubetest.Start(kubetest.Options{Istio: true})
	if err != nil {
		t.Fatalf("start the test API server: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	dirs := kustomizations(t, deploy)
	for _, want := range []string{"base", "overlays/dev", "overlays/prod", "operator", "samples"} {
		if !slices.Contains(dirs, filepath.Join(deploy, want)) {
			t.Errorf("no kustomization in deploy/%s (found %v)", want, dirs)
		}
	}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(deploy, dir)
		t.Run(rel, func(t *testing.T) {
			objs := render(t, dir)
			if len(objs) == 0 {
				t.Fatal("renders no objects")
			}
			// Namespaces are created for real: a dry-run namespace does not exist for the
			// objects inside it.
			for _, o := range objs {
				if ns := o.GetNamespace(); ns != "" {
					err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
					if err != nil && !apierrors.IsAlreadyExists(err) {
						t.Fatal(err)
					}
				}
			}
			for _, o := range objs {
				err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o),
					client.FieldOwner("manifest-test"), client.ForceOwnership, client.DryRunAll)
				if err != nil {
					t.Errorf("%s %s/%s rejected: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}
			checkRendered(t, rel, objs, table.Names())
		})
	}
}

// checkRendered asserts what each kustomization must contain beyond being valid.
func checkRendered(t *testing.T, rel string, objs []*unstructured.Unstructured, services []string) {
	t.Helper()
	kinds := map[string][]string{}
	for _, o := range objs {
		kinds[o.GetKind()] = append(kinds[o.GetKind()], o.GetName())
	}
	switch rel {
	case "base", filepath.Join("overlays", "dev"), filepath.Join("overlays", "prod"):
		for _, s := range services {
			for _, k := range []string{"Service", "PodDisruptionBudget", "VirtualService", "DestinationRule"} {
				if !slices.Contains(kinds[k], s) {
					t.Errorf("no %s %s", k, s)
				}
			}
			if !slices.Contains(kinds["Deployment"], s) && !slices.Contains(kinds["StatefulSet"], s) {
				t.Errorf("no workload for %s", s)
			}
		}
	case "operator":
		for _, k := range []string{"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Deployment"} {
			if len(kinds[k]) == 0 {
				t.Errorf("no %s", k)
			}
		}
	}
	if rel == filepath.Join("overlays", "dev") {
		// Generated Secrets get a content hash suffix; the references must follow it.
		for _, o := range objs {
			if o.GetKind() != "Deployment" || o.GetName() != "risk" {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			env, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "env")
			for _, e := range env {
				name, _, _ := unstructured.NestedString(e.(map[string]any), "valueFrom", "secretKeyRef", "name")
				if name != "" && !strings.HasPrefix(name, "risk-database-") && !strings.HasPrefix(name, "bourse-api-keys-") {
					t.Errorf("risk env %v refers to Secret %q, not the generated one", e, name)
				}
			}
		}
	}
	if rel == filepath.Join("overlays", "prod") {
		for _, o := range objs {
			if o.GetKind() != "Deployment" && o.GetKind() != "StatefulSet" {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			img, _, _ := unstructured.NestedString(containers[0].(map[string]any), "image")
			if !strings.HasPrefix(img, "registry.example.com/bourse/") {
				t.Errorf("%s image %q is not from the registry", o.GetName(), img)
			}
		}
	}
}
