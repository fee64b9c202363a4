// Package kubetest starts a real kube-apiserver and etcd (controller-runtime's envtest) for the
// operator's tests, with the Application CRD and Istio's routing CRDs installed.
//
// The binaries come from KUBEBUILDER_ASSETS, or else from the repository's ./bin, where
// scripts/tools.sh builds them. A missing binary is an error, never a skip.
package kubetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// Options choose what Start installs.
type Options struct {
	// Istio installs the VirtualService and DestinationRule CRDs.
	Istio bool
}

// Env is a running API server.
type Env struct {
	*envtest.Environment
	Scheme *runtime.Scheme
}

// RepoRoot is the directory holding go.work, found upwards from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run the tests inside the repository")
		}
		dir = parent
	}
}

// AssetsDir is where kube-apiserver and etcd are, or an error saying how to get them.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin")
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if fi, err := os.Stat(filepath.Join(dir, bin)); err != nil || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s not found in %s: run scripts/tools.sh kube-apiserver etcd (or make tools), or set KUBEBUILDER_ASSETS", bin, dir)
		}
	}
	return dir, nil
}

// Scheme has the built-in types and Application.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := appsv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Start starts etcd and kube-apiserver and installs the CRDs. Call Stop when done.
func Start(o Options) (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "deploy", "operator", "crd")},
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme(),
	}
	if o.Istio {
		crds, err := IstioCRDs()
		if err != nil {
			return nil, err
		}
		env.CRDs = crds
	}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("start kube-apiserver and etcd from %s: %w", assets, err)
	}
	return &Env{Environment: env, Scheme: env.Scheme}, nil
}
