package controller

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// phaseOf reads an Application's phase from its Deployment, the way `kubectl rollout status`
// does: nothing counts as Running until the deployment controller has observed the current
// generation and every desired replica is updated and available.
func phaseOf(dep *appsv1.Deployment) (appsv1alpha1.Phase, string) {
	desired := int32(1)
	if dep.Spec.Replicas != nil {
		desired = *dep.Spec.Replicas
	}
	st := dep.Status
	if st.ObservedGeneration == 0 {
		return appsv1alpha1.PhasePending, "waiting for the deployment controller to observe the Deployment"
	}
	if st.ObservedGeneration < dep.Generation {
		return appsv1alpha1.PhaseProgressing, fmt.Sprintf("waiting for the deployment controller to observe generation %d", dep.Generation)
	}
	if c := deploymentCondition(dep, appsv1.DeploymentProgressing); c != nil && c.Status == corev1.ConditionFalse {
		return appsv1alpha1.PhaseDegraded, fmt.Sprintf("rollout failed: %s: %s", c.Reason, c.Message)
	}
	if c := deploymentCondition(dep, appsv1.DeploymentReplicaFailure); c != nil && c.Status == corev1.ConditionTrue {
		return appsv1alpha1.PhaseDegraded, fmt.Sprintf("replica failure: %s: %s", c.Reason, c.Message)
	}
	if desired == 0 {
		if st.Replicas == 0 {
			return appsv1alpha1.PhaseRunning, "scaled to zero"
		}
		return appsv1alpha1.PhaseProgressing, fmt.Sprintf("scaling down: %d replicas left", st.Replicas)
	}
	if st.UpdatedReplicas == desired && st.AvailableReplicas == desired && st.Replicas == desired {
		return appsv1alpha1.PhaseRunning, fmt.Sprintf("%d/%d replicas available", st.AvailableReplicas, desired)
	}
	// A finished rollout (the new ReplicaSet became available) that has since lost replicas.
	if c := deploymentCondition(dep, appsv1.DeploymentProgressing); c != nil && c.Reason == "NewReplicaSetAvailable" &&
		st.UpdatedReplicas == desired && st.AvailableReplicas < desired {
		return appsv1alpha1.PhaseDegraded, fmt.Sprintf("%d/%d replicas available", st.AvailableReplicas, desired)
	}
	if st.AvailableReplicas == 0 {
		return appsv1alpha1.PhasePending, fmt.Sprintf("0/%d replicas available", desired)
	}
	return appsv1alpha1.PhaseProgressing, fmt.Sprintf("%d/%d replicas updated, %d available", st.UpdatedReplicas, desired, st.AvailableReplicas)
}

func deploymentCondition(dep *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range dep.Status.Conditions {
		if dep.Status.Conditions[i].Type == t {
			return &dep.Status.Conditions[i]
		}
	}
	return nil
}
