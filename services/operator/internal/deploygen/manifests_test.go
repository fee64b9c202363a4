package deploygen_test

import (
	"context"
	"encoding/base64"
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
		checkDevSecrets(t, objs, services)
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

// checkDevSecrets: generated Secrets get a content hash suffix, and every reference of every
// workload (environment and volumes) must follow it to a Secret the overlay renders; each service
// mounts its own keyring, and matching's key for risk is a service key in risk's keyring.
func checkDevSecrets(t *testing.T, objs []*unstructured.Unstructured, services []string) {
	t.Helper()
	secrets := map[string]bool{}
	data := map[string]string{} // "<secret without its hash>/<key>" → value
	for _, o := range objs {
		if o.GetKind() != "Secret" {
			continue
		}
		secrets[o.GetName()] = true
		values, _, _ := unstructured.NestedStringMap(o.Object, "data")
		for k, v := range values {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatalf("Secret %s key %s: %v", o.GetName(), k, err)
			}
			data[o.GetName()[:strings.LastIndex(o.GetName(), "-")]+"/"+k] = string(b)
		}
	}
	riskKey := strings.TrimSpace(data["matching-risk-key/key"])
	entries := func(keyring string) (out []string) {
		for line := range strings.SplitSeq(keyring, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
		return out
	}
	if riskKey == "" || !slices.Contains(entries(data["risk-api-keys/keys"]), riskKey+"=service:matching") {
		t.Errorf("matching's key for risk %q is not service:matching in risk's keyring %q", riskKey, data["risk-api-keys/keys"])
	}
	for _, s := range services {
		for _, e := range entries(data[s+"-api-keys/keys"]) {
			if key, _, _ := strings.Cut(e, "="); key == riskKey && e != riskKey+"=service:matching" {
				t.Errorf("%s's keyring gives matching's key for risk another identity: %s", s, e)
			}
		}
	}
	keyrings := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" && o.GetKind() != "StatefulSet" {
			continue
		}
		service := o.GetLabels()["app.kubernetes.io/name"]
		spec, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
		var refs []string
		containers, _, _ := unstructured.NestedSlice(spec, "containers")
		for _, c := range containers {
			env, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
			for _, e := range env {
				if name, _, _ := unstructured.NestedString(e.(map[string]any), "valueFrom", "secretKeyRef", "name"); name != "" {
					refs = append(refs, name)
				}
			}
		}
		volumes, _, _ := unstructured.NestedSlice(spec, "volumes")
		for _, v := range volumes {
			name, _, _ := unstructured.NestedString(v.(map[string]any), "secret", "secretName")
			if name == "" {
				continue
			}
			refs = append(refs, name)
			if v.(map[string]any)["name"] == "api-keys" {
				keyrings[service] = name
			}
		}
		for _, name := range refs {
			if !secrets[name] {
				t.Errorf("%s %s refers to Secret %q, not a generated one", o.GetKind(), o.GetName(), name)
			}
		}
	}
	for _, s := range services {
		if !strings.HasPrefix(keyrings[s], s+"-api-keys-") {
			t.Errorf("%s mounts keyring %q, want its own generated %s-api-keys", s, keyrings[s], s)
		}
	}
}
