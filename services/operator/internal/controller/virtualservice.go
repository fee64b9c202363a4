package controller

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// The VirtualService is handled as an unstructured object: Istio's typed client pins an older
// Kubernetes client library than controller-runtime needs, and the operator only writes a
// handful of fields.
var virtualServiceGVK = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}

// errIstioAbsent means the cluster does not serve networking.istio.io/v1 VirtualService.
var errIstioAbsent = errors.New("networking.istio.io/v1 VirtualService is not served by this cluster (Istio CRDs not installed)")

// istioInstalled asks the REST mapper, which looks the group up in discovery on a miss, so an
// Istio installed after the operator started is found on a later reconcile.
func istioInstalled(mapper meta.RESTMapper) (bool, error) {
	_, err := mapper.RESTMapping(virtualServiceGVK.GroupKind(), virtualServiceGVK.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	default:
		return false, fmt.Errorf("look up VirtualService kind: %w", err)
	}
}

// desiredVirtualService routes the in-mesh host to the Service. Retries are limited to failures
// where the request never reached the application (connect failure, refused stream), which are
// safe for any RPC; the services' own tables add retries on UNAVAILABLE for idempotent methods.
func desiredVirtualService(app *appsv1alpha1.Application) *unstructured.Unstructured {
	host := fmt.Sprintf("%s.%s.svc.cluster.local", app.Name, app.Namespace)
	route := map[string]any{
		"route": []any{map[string]any{
			"destination": map[string]any{
				"host": host,
				"port": map[string]any{"number": int64(app.Spec.Port)},
			},
		}},
		"retries": map[string]any{
			"attempts": int64(2),
			"retryOn":  "connect-failure,refused-stream",
		},
	}
	if app.Spec.Timeout != "" {
		route["timeout"] = app.Spec.Timeout
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"hosts": []any{app.Name, host},
			"http":  []any{route},
		},
	}}
	u.SetGroupVersionKind(virtualServiceGVK)
	u.SetName(app.Name)
	u.SetNamespace(app.Namespace)
	u.SetLabels(childLabels(app))
	u.SetOwnerReferences(ownerReferences(app))
	return u
}

func (r *Reconciler) applyVirtualService(ctx context.Context, app *appsv1alpha1.Application) error {
	ok, err := istioInstalled(r.Client.RESTMapper())
	if err != nil {
		return err
	}
	if !ok {
		return errIstioAbsent
	}
	return r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(desiredVirtualService(app)), client.FieldOwner(FieldOwner), client.ForceOwnership)
}
