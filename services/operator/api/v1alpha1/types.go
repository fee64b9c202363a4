package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Application is one gRPC service run by the operator. The CRD's OpenAPI schema in
// deploy/operator/crd mirrors these types; a test keeps the two in step.
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ApplicationSpec   `json:"spec"`
	Status ApplicationStatus `json:"status,omitempty"`
}

// ApplicationSpec is what the user asks for.
type ApplicationSpec struct {
	// Replicas of the Deployment; 0 scales the application down without deleting it.
	Replicas *int32 `json:"replicas,omitempty"`
	// Image is the container image reference, e.g. registry.example/bourse/risk:v1.
	Image string `json:"image"`
	// Port is the gRPC port the container listens on; the Service exposes it under the same number.
	Port int32 `json:"port"`
	// MetricsPort, when set, is the port Prometheus scrapes, announced by pod annotations; it is not
	// published on the Service (it also serves Go profiles), so the container should bind it on
	// loopback, where the Istio sidecar scrapes it.
	MetricsPort int32 `json:"metricsPort,omitempty"`
	// Env is passed to the container as plain name/value pairs.
	Env []EnvVar `json:"env,omitempty"`
	// Resources are the container's requests and limits.
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// Timeout is the per-request timeout of the Istio route, e.g. "5s"; empty leaves Istio's default.
	Timeout string `json:"timeout,omitempty"`
}

// EnvVar is one environment variable of the container.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// Phase summarises the Application's state, derived from its Deployment.
type Phase string

// The phases, in the order an Application usually goes through them.
const (
	PhasePending     Phase = "Pending"     // no replica available yet
	PhaseProgressing Phase = "Progressing" // a rollout or scale is under way
	PhaseRunning     Phase = "Running"     // every desired replica is updated and available
	PhaseDegraded    Phase = "Degraded"    // the rollout failed, replicas are missing, or reconcile failed
)

// Condition types set on an Application.
const (
	// ConditionAvailable is True when every desired replica is updated and available.
	ConditionAvailable = "Available"
	// ConditionDegraded is True when the rollout failed or the operator could not reconcile.
	ConditionDegraded = "Degraded"
	// ConditionVirtualService tells whether the Istio route exists, or why it was skipped.
	ConditionVirtualService = "VirtualService"
	// ConditionConflict is True while an object of the Application's name that the Application
	// does not own (a Deployment applied by kustomize, say) keeps the operator from writing; the
	// message names it.
	ConditionConflict = "Conflict"
)

// ApplicationStatus is what the operator observed.
type ApplicationStatus struct {
	// ObservedGeneration is the metadata.generation this status describes.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Replicas is the Deployment's desired replica count.
	Replicas int32 `json:"replicas,omitempty"`
	// AvailableReplicas is the Deployment's available replica count.
	AvailableReplicas int32  `json:"availableReplicas,omitempty"`
	Phase             Phase  `json:"phase,omitempty"`
	Message           string `json:"message,omitempty"`
	// Conditions: Available, Degraded, VirtualService and Conflict.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ApplicationList is a list of Applications.
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Application `json:"items"`
}
