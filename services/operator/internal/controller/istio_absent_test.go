package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
)

// Without Istio's CRDs the operator still runs the application and says the route was skipped.
func TestIstioAbsentSkipsVirtualService(t *testing.T) {
	env, err := kubetest.Start(kubetest.Options{Istio: false})
	if err != nil {
		t.Fatalf("start a second API server without Istio: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop API server: %v", err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := startOperator(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := namespace(t, c)
	app := newApp(ns, "risk")
	if err := c.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(app)
	kubetest.Eventually(t, wait, "Deployment created", func() error { return c.Get(ctx, key, &appsv1.Deployment{}) })
	kubetest.Eventually(t, wait, "VirtualService skipped", func() error {
		got := &appsv1alpha1.Application{}
		if err := c.Get(ctx, key, got); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(got.Status.Conditions, appsv1alpha1.ConditionVirtualService)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "IstioNotInstalled" || !strings.HasPrefix(cond.Message, "skipped") {
			return fmt.Errorf("condition %+v", cond)
		}
		// Skipping the route is not a failure of the application.
		if got.Status.Phase != appsv1alpha1.PhasePending {
			return fmt.Errorf("phase %q, want Pending", got.Status.Phase)
		}
		return nil
	})
}
