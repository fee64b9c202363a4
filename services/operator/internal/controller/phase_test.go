package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

func TestPhaseOf(t *testing.T) {
	three, zero := int32(3), int32(0)
	avail := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}
	failed := appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "quota"}
	cases := []struct {
		name     string
		replicas *int32
		gen      int64
		st       appsv1.DeploymentStatus
		want     appsv1alpha1.Phase
	}{
		{"never observed", &three, 1, appsv1.DeploymentStatus{}, appsv1alpha1.PhasePending},
		{"old generation", &three, 2, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}, appsv1alpha1.PhaseProgressing},
		{"none available", &three, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3}, appsv1alpha1.PhasePending},
		{"some available", &three, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2}, appsv1alpha1.PhaseProgressing},
		{"old pods left", &three, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 3}, appsv1alpha1.PhaseProgressing},
		{"all available", &three, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}, appsv1alpha1.PhaseRunning},
		{"lost a replica", &three, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2, Conditions: []appsv1.DeploymentCondition{avail}}, appsv1alpha1.PhaseDegraded},
		{"replica failure", &three, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Conditions: []appsv1.DeploymentCondition{failed}}, appsv1alpha1.PhaseDegraded},
		{"scaled to zero", &zero, 1, appsv1.DeploymentStatus{ObservedGeneration: 1}, appsv1alpha1.PhaseRunning},
		{"scaling to zero", &zero, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2}, appsv1alpha1.PhaseProgressing},
		{"default one replica", nil, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}, appsv1alpha1.PhaseRunning},
	}
	for _, tc := range cases {
		dep := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: tc.replicas}, Status: tc.st}
		dep.Generation = tc.gen
		if got, msg := phaseOf(dep); got != tc.want {
			t.Errorf("%s: phase %s (%s), want %s", tc.name, got, msg, tc.want)
		}
	}
}
