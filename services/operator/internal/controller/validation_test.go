package controller_test

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// The CRD's OpenAPI schema is enforced by the real API server.
func TestInvalidSpecRejectedByAPIServer(t *testing.T) {
	ns := namespace(t, k8s)
	neg := int32(-1)
	cases := []struct {
		name  string
		edit  func(*appsv1alpha1.ApplicationSpec)
		field string
	}{
		{"image with spaces", func(s *appsv1alpha1.ApplicationSpec) { s.Image = "not an image!" }, "spec.image"},
		{"image upper case", func(s *appsv1alpha1.ApplicationSpec) { s.Image = "Registry/Bourse:v1" }, "spec.image"},
		{"image empty", func(s *appsv1alpha1.ApplicationSpec) { s.Image = "" }, "spec.image"},
		{"negative replicas", func(s *appsv1alpha1.ApplicationSpec) { s.Replicas = &neg }, "spec.replicas"},
		{"port zero", func(s *appsv1alpha1.ApplicationSpec) { s.Port = 0 }, "spec.port"},
		{"port too large", func(s *appsv1alpha1.ApplicationSpec) { s.Port = 65536 }, "spec.port"},
		{"metrics port too large", func(s *appsv1alpha1.ApplicationSpec) { s.MetricsPort = 70000 }, "spec.metricsPort"},
		{"bad env name", func(s *appsv1alpha1.ApplicationSpec) { s.Env = []appsv1alpha1.EnvVar{{Name: "1=bad"}} }, "spec.env[0].name"},
		{"bad timeout", func(s *appsv1alpha1.ApplicationSpec) { s.Timeout = "soon" }, "spec.timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := newApp(ns, "invalid")
			tc.edit(&app.Spec)
			err := k8s.Create(context.Background(), app)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create = %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}

	// The boundaries themselves are accepted, and replicas defaults to 1.
	app := newApp(ns, "edges")
	app.Spec.Replicas = nil
	app.Spec.Port = 65535
	app.Spec.Image = "busybox@sha256:" + strings.Repeat("ab", 32)
	if err := k8s.Create(context.Background(), app); err != nil {
		t.Fatalf("valid application rejected: %v", err)
	}
	if app.Spec.Replicas == nil || *app.Spec.Replicas != 1 {
		t.Errorf("defaulted replicas = %v, want 1", app.Spec.Replicas)
	}
}
