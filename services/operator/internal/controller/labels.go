package controller

import (
	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// FieldOwner is the server-side apply manager name of every object the operator writes.
const FieldOwner = "bourse-operator"

// Labels every child object carries; the selector uses only the stable name label, since a
// Deployment's selector cannot change after creation.
func selectorLabels(app *appsv1alpha1.Application) map[string]string {
	return map[string]string{"app.kubernetes.io/name": app.Name}
}

func childLabels(app *appsv1alpha1.Application) map[string]string {
	l := selectorLabels(app)
	l["app.kubernetes.io/managed-by"] = FieldOwner
	// Istio DestinationRule subsets select on "version".
	l["version"] = "stable"
	return l
}
