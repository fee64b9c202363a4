package controller

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// desiredService exposes the gRPC port, named "grpc" with appProtocol so Istio treats the
// traffic as HTTP/2 gRPC without protocol sniffing. The metrics port also serves Go profiles, so
// it is not published: Prometheus reaches it through the pod's sidecar (see container).
func desiredService(app *appsv1alpha1.Application) *corev1ac.ServiceApplyConfiguration {
	spec := corev1ac.ServiceSpec().
		WithType(corev1.ServiceTypeClusterIP).
		WithSelector(selectorLabels(app)).
		WithPorts(corev1ac.ServicePort().
			WithName("grpc").
			WithAppProtocol("grpc").
			WithProtocol(corev1.ProtocolTCP).
			WithPort(app.Spec.Port).
			WithTargetPort(intstr.FromString("grpc")))
	return corev1ac.Service(app.Name, app.Namespace).
		WithLabels(childLabels(app)).
		WithOwnerReferences(ownerRef(app)).
		WithSpec(spec)
}
