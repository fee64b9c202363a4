package controller_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bourse-dev/bourse/services/operator/internal/controller"
	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
)

// k8s talks to the API server directly (no cache), so assertions see what the server stores.
var k8s client.Client

func TestMain(m *testing.M) {
	env, err := kubetest.Start(kubetest.Options{Istio: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: cannot start the test API server:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k8s, err = startOperator(ctx, env.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		cancel()
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	cancel()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop test API server:", err)
	}
	os.Exit(code)
}

// startOperator runs the controller as cmd/operator does, in this process, against cfg.
func startOperator(ctx context.Context, cfg *rest.Config) (client.Client, error) {
	skip := true // several tests start their own manager in this process
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     kubetest.Scheme(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	r := &controller.Reconciler{
		Client:     mgr.GetClient(),
		Recorder:   mgr.GetEventRecorder(controller.FieldOwner),
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		MinBackoff: 50 * time.Millisecond,
		MaxBackoff: 2 * time.Second,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up controller: %w", err)
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return client.New(cfg, client.Options{Scheme: kubetest.Scheme()})
}

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, c client.Client) string {
	t.Helper()
	name := "t-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(name) > 60 {
		name = name[:60]
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: strings.TrimRight(name, "-")}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}
