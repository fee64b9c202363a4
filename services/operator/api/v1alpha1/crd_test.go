package v1alpha1_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
)

// The CRD is written by hand, so this test keeps its schema and the Go types in step: every
// property has a JSON field of the same name, and every JSON field has a property.
func TestCRDMatchesGoTypes(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "operator", "crd", "apps.bourse.dev_applications.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatal(err)
	}
	if crd.Spec.Group != v1alpha1.GroupVersion.Group || crd.Spec.Names.Kind != "Application" {
		t.Fatalf("CRD group/kind = %s/%s", crd.Spec.Group, crd.Spec.Names.Kind)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != v1alpha1.GroupVersion.Version {
		t.Fatalf("CRD versions = %+v", crd.Spec.Versions)
	}
	top := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties

	compare(t, "spec", top["spec"], reflect.TypeFor[v1alpha1.ApplicationSpec]())
	compare(t, "status", top["status"], reflect.TypeFor[v1alpha1.ApplicationStatus]())
	compare(t, "spec.env[]", *top["spec"].Properties["env"].Items.Schema, reflect.TypeFor[v1alpha1.EnvVar]())
	compare(t, "status.conditions[]", *top["status"].Properties["conditions"].Items.Schema, reflect.TypeFor[metav1.Condition]())

	// Resources: the schema covers requests and limits only (claims are not offered).
	res := keys(top["spec"].Properties["resources"].Properties)
	if want := []string{"limits", "requests"}; !slices.Equal(res, want) {
		t.Errorf("spec.resources properties = %v, want %v", res, want)
	}
	for _, f := range res {
		if !slices.Contains(jsonFields(reflect.TypeFor[corev1.ResourceRequirements]()), f) {
			t.Errorf("spec.resources.%s is not a field of ResourceRequirements", f)
		}
	}

	// The phases the schema allows are exactly the ones the controller sets.
	var enum []string
	for _, v := range top["status"].Properties["phase"].Enum {
		enum = append(enum, strings.Trim(string(v.Raw), `"`))
	}
	phases := []string{string(v1alpha1.PhasePending), string(v1alpha1.PhaseProgressing), string(v1alpha1.PhaseRunning), string(v1alpha1.PhaseDegraded)}
	if !slices.Equal(enum, phases) {
		t.Errorf("phase enum = %v, want %v", enum, phases)
	}
}

func compare(t *testing.T, where string, s apiextensionsv1.JSONSchemaProps, typ reflect.Type) {
	t.Helper()
	if got, want := keys(s.Properties), jsonFields(typ); !slices.Equal(got, want) {
		t.Errorf("%s: CRD properties %v, Go JSON fields %v", where, got, want)
	}
}

func keys(m map[string]apiextensionsv1.JSONSchemaProps) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	slices.Sort(k)
	return k
}

// jsonFields lists a struct's JSON field names, following inlined embedded structs.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && (opts == "inline" || name == "") {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
