package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
)

func plainDeployment(ns, name string, refs ...metav1.OwnerReference) *appsv1.Deployment {
	one := int32(1)
	labels := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, OwnerReferences: refs},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "bourse/" + name}}},
			},
		},
	}
}

func plainService(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": name},
			Ports:    []corev1.ServicePort{{Name: "grpc", Port: 7001, TargetPort: intstr.FromInt32(7001)}},
		},
	}
}

// waitConflict waits for the Conflict condition in the given status whose message has every
// fragment.
func waitConflict(t *testing.T, key client.ObjectKey, status metav1.ConditionStatus, fragments ...string) *appsv1alpha1.Application {
	t.Helper()
	var app *appsv1alpha1.Application
	kubetest.Eventually(t, wait, "Conflict "+string(status), func() error {
		app = getApp(t, key)
		c := meta.FindStatusCondition(app.Status.Conditions, appsv1alpha1.ConditionConflict)
		if c == nil || c.Status != status {
			return fmt.Errorf("conflict condition %+v", c)
		}
		for _, f := range fragments {
			if !strings.Contains(c.Message, f) {
				return fmt.Errorf("conflict message %q lacks %q", c.Message, f)
			}
		}
		return nil
	})
	return app
}

// The README's own collision: kustomize applied a Deployment and a Service named discovery (no
// owner references), then an Application named discovery arrives. The operator leaves both
// exactly as they are and reports a Conflict naming them; as each goes away the condition follows,
// and once both are gone the operator creates its own, with no change to the Application.
func TestUnownedObjectsAreLeftAloneAndReportedAsConflict(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, k8s)
	dep, svc := plainDeployment(ns, "discovery"), plainService(ns, "discovery")
	for _, obj := range []client.Object{dep, svc} {
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	app := newApp(ns, "discovery")
	if err := k8s.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(app)
	got := waitConflict(t, key, metav1.ConditionTrue, "Deployment discovery", "Service discovery", "not owned")
	if got.Status.Phase != appsv1alpha1.PhaseDegraded || !strings.Contains(got.Status.Message, "Deployment discovery") {
		t.Errorf("phase %q message %q, want Degraded naming the Deployment", got.Status.Phase, got.Status.Message)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, appsv1alpha1.ConditionAvailable); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "Conflict" {
		t.Errorf("Available condition %+v", c)
	}
	kubetest.Eventually(t, wait, "conflict event", func() error { return hasEvent(ctx, ns, "discovery", "Conflict") })
	// Give the operator time to do what it must not, then check nothing changed.
	time.Sleep(time.Second)
	for _, obj := range []client.Object{dep, svc} {
		now := obj.DeepCopyObject().(client.Object)
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), now); err != nil {
			t.Fatal(err)
		}
		if now.GetResourceVersion() != obj.GetResourceVersion() || len(now.GetOwnerReferences()) != 0 {
			t.Errorf("%s %s was modified (resourceVersion %s → %s, owners %v)", kindOfTest(obj), obj.GetName(),
				obj.GetResourceVersion(), now.GetResourceVersion(), now.GetOwnerReferences())
		}
	}

	// One conflict gone, the other still named.
	if err := k8s.Delete(ctx, dep); err != nil {
		t.Fatal(err)
	}
	kubetest.Eventually(t, wait, "the conflict to name only the Service", func() error {
		c := meta.FindStatusCondition(getApp(t, key).Status.Conditions, appsv1alpha1.ConditionConflict)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "Service discovery") || strings.Contains(c.Message, "Deployment") {
			return fmt.Errorf("conflict condition %+v", c)
		}
		return nil
	})
	if err := k8s.Get(ctx, key, &appsv1.Deployment{}); err == nil {
		t.Error("the operator created its Deployment while its Service's name was still taken")
	}

	// Both gone: the operator recovers by itself.
	if err := k8s.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	waitConflict(t, key, metav1.ConditionFalse)
	kubetest.Eventually(t, wait, "the operator's own children", func() error {
		d, s := &appsv1.Deployment{}, &corev1.Service{}
		if err := k8s.Get(ctx, key, d); err != nil {
			return err
		}
		if err := k8s.Get(ctx, key, s); err != nil {
			return err
		}
		if err := assertControlledBy(d, app); err != nil {
			return err
		}
		return assertControlledBy(s, app)
	})
	waitPhase(t, key, appsv1alpha1.PhasePending, 0, "")
}

// A Deployment of the Application's name that another controller owns is a conflict too, named
// with its owner, and is never given a second controller reference.
func TestDeploymentOfAnotherControllerIsAConflict(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, k8s)
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "someone-else"}}
	if err := k8s.Create(ctx, owner); err != nil {
		t.Fatal(err)
	}
	yes := true
	foreign := plainDeployment(ns, "clash", metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: &yes})
	if err := k8s.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	app := newApp(ns, "clash")
	if err := k8s.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(app)
	waitConflict(t, key, metav1.ConditionTrue, "Deployment clash", "controlled by ConfigMap someone-else")
	now := &appsv1.Deployment{}
	if err := k8s.Get(ctx, key, now); err != nil {
		t.Fatal(err)
	}
	if len(now.OwnerReferences) != 1 || now.ResourceVersion != foreign.ResourceVersion {
		t.Fatalf("the foreign Deployment was changed: owners %v", now.OwnerReferences)
	}
	// Once it is gone, the operator takes over without any change to the Application.
	if err := k8s.Delete(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	kubetest.Eventually(t, wait, "Deployment created after the clash", func() error {
		if err := k8s.Get(ctx, key, now); err != nil {
			return err
		}
		return assertControlledBy(now, app)
	})
	waitConflict(t, key, metav1.ConditionFalse)
}

func kindOfTest(obj client.Object) string {
	if _, ok := obj.(*appsv1.Deployment); ok {
		return "Deployment"
	}
	return "Service"
}

// An Istio VirtualService of the Application's name that it does not own is left alone too.
func TestUnownedVirtualServiceIsAConflict(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, k8s)
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(vsGVK)
	vs.SetNamespace(ns)
	vs.SetName("routed")
	if err := unstructured.SetNestedStringSlice(vs.Object, []string{"routed"}, "spec", "hosts"); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, vs); err != nil {
		t.Fatal(err)
	}
	app := newApp(ns, "routed")
	if err := k8s.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(app)
	waitConflict(t, key, metav1.ConditionTrue, "VirtualService routed")
	if err := k8s.Get(ctx, key, &appsv1.Deployment{}); err == nil {
		t.Error("the operator wrote its Deployment while the VirtualService's name was taken")
	}
	if err := k8s.Delete(ctx, vs); err != nil {
		t.Fatal(err)
	}
	// A VirtualService is not watched: the periodic recheck would find it gone; touching the
	// Application's spec gets there sooner.
	kubetest.Eventually(t, wait, "spec change", func() error {
		cur := getApp(t, key)
		cur.Spec.Timeout = "4s"
		return k8s.Update(ctx, cur)
	})
	waitConflict(t, key, metav1.ConditionFalse)
	kubetest.Eventually(t, wait, "the operator's own VirtualService", func() error {
		own := &unstructured.Unstructured{}
		own.SetGroupVersionKind(vsGVK)
		if err := k8s.Get(ctx, key, own); err != nil {
			return err
		}
		return assertControlledBy(own, app)
	})
}
