// Package controller reconciles Applications into a Deployment, a Service and, when Istio is
// installed, a VirtualService, and reports the Deployment's state back in the status.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// IstioRecheck is how often an Application whose VirtualService was skipped looks for Istio again.
const IstioRecheck = 5 * time.Minute

// Reconciler turns Applications into their children.
type Reconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
	Logger   *slog.Logger
	// MinBackoff and MaxBackoff bound the exponential retry delay after a failed reconcile.
	MinBackoff, MaxBackoff time.Duration
}

// SetupWithManager registers the controller: it watches Applications and the Deployments and
// Services of their names, owned or not (an Application whose name is taken must notice when the
// foreign object goes away).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	minB, maxB := r.MinBackoff, r.MaxBackoff
	if minB == 0 {
		minB = 500 * time.Millisecond
	}
	if maxB == 0 {
		maxB = 5 * time.Minute
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.Application{}).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(sameName)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(sameName)).
		WithOptions(controller.Options{
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](minB, maxB),
		}).
		Complete(r)
}

// Reconcile applies the children and writes the status. An error is recorded in the status as a
// Degraded condition and returned, so the work queue retries with exponential backoff.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	app := &appsv1alpha1.Application{}
	if err := r.Client.Get(ctx, req.NamespacedName, app); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !app.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil // owner references let the garbage collector remove the children
	}
	before := app.DeepCopy()
	log := r.Logger.With("application", req.String(), "generation", app.Generation)

	result, err := r.reconcileChildren(ctx, app)
	if err != nil {
		log.Error("reconcile failed", "err", err)
		r.Recorder.Eventf(app, nil, corev1.EventTypeWarning, "ReconcileFailed", "Reconcile", "%v", err)
		setStatus(app, appsv1alpha1.PhaseDegraded, "reconcile failed: "+err.Error())
		meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{
			Type: appsv1alpha1.ConditionDegraded, Status: metav1.ConditionTrue,
			Reason: "ReconcileError", Message: err.Error(), ObservedGeneration: app.Generation,
		})
		meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{
			Type: appsv1alpha1.ConditionAvailable, Status: metav1.ConditionFalse,
			Reason: "ReconcileError", Message: "the operator could not reconcile the application", ObservedGeneration: app.Generation,
		})
		if serr := r.patchStatus(ctx, before, app); serr != nil {
			err = errors.Join(err, serr)
		}
		return reconcile.Result{}, err
	}
	if before.Status.Phase != app.Status.Phase {
		kind := corev1.EventTypeNormal
		if app.Status.Phase == appsv1alpha1.PhaseDegraded {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(app, nil, kind, string(app.Status.Phase), "Observe", "%s", app.Status.Message)
		log.Info("phase changed", "from", before.Status.Phase, "to", app.Status.Phase, "message", app.Status.Message)
	}
	if err := r.patchStatus(ctx, before, app); err != nil {
		return reconcile.Result{}, err
	}
	return result, nil
}

// reconcileChildren applies the Deployment, Service and VirtualService and fills app.Status.
func (r *Reconciler) reconcileChildren(ctx context.Context, app *appsv1alpha1.Application) (reconcile.Result, error) {
	foreign, err := r.foreignChildren(ctx, app)
	if err != nil {
		return reconcile.Result{}, err
	}
	if result, conflict := r.setConflict(app, foreign); conflict {
		return result, nil
	}
	owner := []client.ApplyOption{client.FieldOwner(FieldOwner), client.ForceOwnership}
	if err := r.Client.Apply(ctx, desiredDeployment(app), owner...); err != nil {
		return reconcile.Result{}, fmt.Errorf("apply Deployment: %w", err)
	}
	if err := r.Client.Apply(ctx, desiredService(app), owner...); err != nil {
		return reconcile.Result{}, fmt.Errorf("apply Service: %w", err)
	}

	var result reconcile.Result
	vsCond := metav1.Condition{Type: appsv1alpha1.ConditionVirtualService, ObservedGeneration: app.Generation}
	switch err := r.applyVirtualService(ctx, app); {
	case errors.Is(err, errIstioAbsent):
		vsCond.Status, vsCond.Reason, vsCond.Message = metav1.ConditionFalse, "IstioNotInstalled", "skipped: "+err.Error()
		result.RequeueAfter = IstioRecheck
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("apply VirtualService: %w", err)
	default:
		vsCond.Status, vsCond.Reason, vsCond.Message = metav1.ConditionTrue, "Applied", "VirtualService "+app.Name+" routes to the Service"
	}
	if c := meta.FindStatusCondition(app.Status.Conditions, vsCond.Type); c == nil || c.Reason != vsCond.Reason {
		r.Recorder.Eventf(app, nil, corev1.EventTypeNormal, "VirtualService"+vsCond.Reason, "Reconcile", "%s", vsCond.Message)
	}
	meta.SetStatusCondition(&app.Status.Conditions, vsCond)

	// The Deployment as the cache sees it; a newer one arrives as a watch event and requeues.
	dep := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: app.Name}, dep); err != nil {
		return reconcile.Result{}, fmt.Errorf("read Deployment: %w", err)
	}
	phase, msg := phaseOf(dep)
	setStatus(app, phase, msg)
	app.Status.Replicas = ptrOr(dep.Spec.Replicas, 1)
	app.Status.AvailableReplicas = dep.Status.AvailableReplicas
	avail := metav1.Condition{Type: appsv1alpha1.ConditionAvailable, Status: metav1.ConditionFalse, Reason: string(phase), Message: msg, ObservedGeneration: app.Generation}
	if phase == appsv1alpha1.PhaseRunning {
		avail.Status = metav1.ConditionTrue
	}
	degraded := metav1.Condition{Type: appsv1alpha1.ConditionDegraded, Status: metav1.ConditionFalse, Reason: string(phase), Message: msg, ObservedGeneration: app.Generation}
	if phase == appsv1alpha1.PhaseDegraded {
		degraded.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&app.Status.Conditions, avail)
	meta.SetStatusCondition(&app.Status.Conditions, degraded)
	return result, nil
}

func setStatus(app *appsv1alpha1.Application, phase appsv1alpha1.Phase, msg string) {
	app.Status.Phase = phase
	app.Status.Message = msg
	app.Status.ObservedGeneration = app.Generation
}

// patchStatus writes the status with a merge patch, so a concurrent spec change is not a conflict.
func (r *Reconciler) patchStatus(ctx context.Context, before, app *appsv1alpha1.Application) error {
	if err := r.Client.Status().Patch(ctx, app, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

func ptrOr(p *int32, d int32) int32 {
	if p == nil {
		return d
	}
	return *p
}

func kindOf(obj client.Object) string {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *corev1.Service:
		return "Service"
	case *unstructured.Unstructured:
		return o.GetKind()
	default:
		return fmt.Sprintf("%T", obj)
	}
}
