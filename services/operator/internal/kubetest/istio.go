package kubetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	// The module ships Istio's own CRD manifests; importing a package keeps it (and so the
	// YAML) in go.mod and the module cache, with the version pinned there.
	_ "istio.io/api/label"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// istioCRDNames are the Istio CRDs the bourse manifests and the operator use.
var istioCRDNames = map[string]bool{
	"virtualservices.networking.istio.io":  true,
	"destinationrules.networking.istio.io": true,
}

// IstioCRDs reads the VirtualService and DestinationRule CRDs from the istio.io/api module's
// kubernetes/customresourcedefinitions.gen.yaml (the version go.mod pins).
func IstioCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		return nil, fmt.Errorf("locate the istio.io/api module: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return nil, errors.New("istio.io/api is not in the module cache: run go mod download in services/operator")
	}
	data, err := os.ReadFile(filepath.Join(dir, "kubernetes", "customresourcedefinitions.gen.yaml"))
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var crds []*apiextensionsv1.CustomResourceDefinition
	for {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := dec.Decode(crd); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode Istio CRDs: %w", err)
		}
		if istioCRDNames[crd.Name] {
			crds = append(crds, crd)
		}
	}
	if len(crds) != len(istioCRDNames) {
		return nil, fmt.Errorf("found %d of the %d Istio CRDs in %s", len(crds), len(istioCRDNames), dir)
	}
	return crds, nil
}
