package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
)

// The operator binary, as deployed: its own process, authenticated as its ServiceAccount and
// authorized only by deploy/operator/rbac.yaml, with leader election on. It must become ready,
// reconcile an Application, and stop cleanly on SIGTERM.
func TestOperatorProcessWithItsRBAC(t *testing.T) {
	env, err := kubetest.Start(kubetest.Options{Istio: true})
	if err != nil {
		t.Fatalf("start the test API server: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	admin, err := client.New(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"bourse-system", "apps"} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	applyRBAC(t, admin, filepath.Join(root, "deploy", "operator", "rbac.yaml"))

	user, err := env.AddUser(envtest.User{
		Name:   "system:serviceaccount:bourse-system:bourse-operator",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:bourse-system", "system:authenticated"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "operator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	health := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--leader-elect", "--leader-elect-namespace=bourse-system",
		"--metrics-addr=0", "--health-addr="+health, "--log-format=text")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kcPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("operator output:\n%s", logs.String())
		}
	})

	kubetest.Eventually(t, 30*time.Second, "operator ready", func() error {
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, b)
		}
		return nil
	})

	app := &appsv1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "risk"},
		Spec:       appsv1alpha1.ApplicationSpec{Image: "bourse/risk:latest", Port: 7002},
	}
	if err := admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(app)
	vs := &unstructured.Unstructured{}
	vs.SetAPIVersion("networking.istio.io/v1")
	vs.SetKind("VirtualService")
	kubetest.Eventually(t, 60*time.Second, "children and status written by the operator process", func() error {
		got := &appsv1alpha1.Application{}
		if err := errors.Join(
			admin.Get(ctx, key, &appsv1.Deployment{}),
			admin.Get(ctx, key, &corev1.Service{}),
			admin.Get(ctx, key, vs),
			admin.Get(ctx, key, got),
		); err != nil {
			return err
		}
		if got.Status.Phase != appsv1alpha1.PhasePending || got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	lease := &unstructured.Unstructured{}
	lease.SetAPIVersion("coordination.k8s.io/v1")
	lease.SetKind("Lease")
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "bourse-system", Name: "operator.apps.bourse.dev"}, lease); err != nil {
		t.Errorf("leader election Lease: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("operator exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("operator still running 20s after SIGTERM")
	}
}

// applyRBAC creates the operator's ServiceAccount, roles and bindings from the deploy manifest.
func applyRBAC(t *testing.T, c client.Client, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		switch obj.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding":
			obj.SetNamespace("bourse-system")
		}
		if err := c.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
