package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// ownerRef makes the Application the controller owner of a child, so deleting the Application
// garbage-collects the child and the child's events requeue the Application.
func ownerRef(app *appsv1alpha1.Application) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(appsv1alpha1.GroupVersion.String()).
		WithKind("Application").
		WithName(app.Name).
		WithUID(app.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// ownerReferences is ownerRef for unstructured children.
func ownerReferences(app *appsv1alpha1.Application) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{
		APIVersion:         appsv1alpha1.GroupVersion.String(),
		Kind:               "Application",
		Name:               app.Name,
		UID:                app.UID,
		Controller:         &yes,
		BlockOwnerDeletion: &yes,
	}}
}
