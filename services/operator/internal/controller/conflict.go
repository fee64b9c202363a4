package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// ConflictRecheck is how often an Application in conflict looks again, besides the watch on
// Deployments and Services of its name (a VirtualService is not watched).
const ConflictRecheck = time.Minute

// foreignChildren names the objects the Application would write (its Deployment, Service and, with
// Istio, VirtualService, all of the Application's name) that exist without this Application as
// their controller: created by kustomize, by hand or by another controller. The operator changes
// only what it owns, so it must leave these alone.
func (r *Reconciler) foreignChildren(ctx context.Context, app *appsv1alpha1.Application) ([]string, error) {
	key := client.ObjectKey{Namespace: app.Namespace, Name: app.Name}
	children := []client.Object{&appsv1.Deployment{}, &corev1.Service{}}
	switch ok, err := istioInstalled(r.Client.RESTMapper()); {
	case err != nil:
		return nil, err
	case ok:
		vs := &unstructured.Unstructured{}
		vs.SetGroupVersionKind(virtualServiceGVK)
		children = append(children, vs)
	}
	var foreign []string
	for _, obj := range children {
		err := r.Client.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s %s: %w", kindOf(obj), app.Name, err)
		}
		if ref := metav1.GetControllerOf(obj); ref == nil || ref.UID != app.UID {
			foreign = append(foreign, kindOf(obj)+" "+app.Name+ownedBy(ref))
		}
	}
	return foreign, nil
}

func ownedBy(ref *metav1.OwnerReference) string {
	if ref == nil {
		return ""
	}
	return fmt.Sprintf(" (controlled by %s %s)", ref.Kind, ref.Name)
}

// setConflict records the conflict condition: True naming the objects left alone, or False.
// While in conflict the Application is Degraded and nothing is written.
func (r *Reconciler) setConflict(app *appsv1alpha1.Application, foreign []string) (reconcile.Result, bool) {
	cond := metav1.Condition{Type: appsv1alpha1.ConditionConflict, Status: metav1.ConditionFalse,
		Reason: "NoConflict", Message: "every child is owned by this Application or absent", ObservedGeneration: app.Generation}
	if len(foreign) == 0 {
		meta.SetStatusCondition(&app.Status.Conditions, cond)
		return reconcile.Result{}, false
	}
	them := "it"
	if len(foreign) > 1 {
		them = "them"
	}
	msg := fmt.Sprintf("%s in namespace %s not owned by this Application, left unchanged: delete or rename %s, or rename the Application",
		strings.Join(foreign, ", "), app.Namespace, them)
	if prev := meta.FindStatusCondition(app.Status.Conditions, cond.Type); prev == nil || prev.Status != metav1.ConditionTrue || prev.Message != msg {
		r.Recorder.Eventf(app, nil, corev1.EventTypeWarning, "Conflict", "Reconcile", "%s", msg)
	}
	cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "NotOwned", msg
	meta.SetStatusCondition(&app.Status.Conditions, cond)
	setStatus(app, appsv1alpha1.PhaseDegraded, msg)
	for _, t := range []string{appsv1alpha1.ConditionAvailable, appsv1alpha1.ConditionDegraded} {
		st := metav1.ConditionFalse
		if t == appsv1alpha1.ConditionDegraded {
			st = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{Type: t, Status: st, Reason: "Conflict", Message: msg, ObservedGeneration: app.Generation})
	}
	return reconcile.Result{RequeueAfter: ConflictRecheck}, true
}

// sameName maps a Deployment or Service to the Application of its name, whether or not it owns
// it: an Application in conflict must hear when the foreign object goes away.
func sameName(_ context.Context, obj client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(obj)}}
}
