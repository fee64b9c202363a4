// Package v1alpha1 is the apps.bourse.dev/v1alpha1 API: the Application resource the operator
// turns into a Deployment, a Service and (when Istio is installed) a VirtualService.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "apps.bourse.dev", Version: "v1alpha1"}

// AddToScheme registers Application and ApplicationList with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Application{}, &ApplicationList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
