package controller_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
	"github.com/bourse-dev/bourse/services/operator/internal/kubetest"
)

const wait = 20 * time.Second

func newApp(ns, name string) *appsv1alpha1.Application {
	replicas := int32(3)
	return &appsv1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1alpha1.ApplicationSpec{
			Replicas:    &replicas,
			Image:       "registry.example:5000/bourse/risk:v1.2.3",
			Port:        7002,
			MetricsPort: 9102,
			Env:         []appsv1alpha1.EnvVar{{Name: "BOURSE_LOG_FORMAT", Value: "json"}},
			Resources: &corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			Timeout: "3s",
		},
	}
}

var vsGVK = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}

func getApp(t *testing.T, key client.ObjectKey) *appsv1alpha1.Application {
	t.Helper()
	app := &appsv1alpha1.Application{}
	if err := k8s.Get(context.Background(), key, app); err != nil {
		t.Fatalf("get application: %v", err)
	}
	return app
}

// assertControlledBy checks the owner reference that lets the garbage collector delete the child
// with its Application (envtest runs no garbage collector, so the reference is what is tested).
func assertControlledBy(obj metav1.Object, app *appsv1alpha1.Application) error {
	ref := metav1.GetControllerOf(obj)
	if ref == nil {
		return fmt.Errorf("%s has no controller reference", obj.GetName())
	}
	if ref.UID != app.UID || ref.Kind != "Application" || ref.APIVersion != "apps.bourse.dev/v1alpha1" || ref.Name != app.Name {
		return fmt.Errorf("%s controller reference %+v, want Application %s uid %s", obj.GetName(), ref, app.Name, app.UID)
	}
	if ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		return fmt.Errorf("%s: blockOwnerDeletion not set", obj.GetName())
	}
	return nil
}

func TestCreateMakesDeploymentServiceAndVirtualService(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, k8s)
	app := newApp(ns, "risk")
	if err := k8s.Create(ctx, app); err != nil {
		t.Fatalf("create application: %v", err)
	}
	key := client.ObjectKeyFromObject(app)

	dep := &appsv1.Deployment{}
	kubetest.Eventually(t, wait, "Deployment created", func() error { return k8s.Get(ctx, key, dep) })
	if err := assertControlledBy(dep, app); err != nil {
		t.Error(err)
	}
	if got := *dep.Spec.Replicas; got != 3 {
		t.Errorf("replicas = %d, want 3", got)
	}
	if dep.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "risk" {
		t.Errorf("selector = %v", dep.Spec.Selector.MatchLabels)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != app.Spec.Image {
		t.Errorf("image = %q, want %q", c.Image, app.Spec.Image)
	}
	// Only gRPC leaves the pod; the metrics port (which also serves profiles) is announced for
	// scraping by the sidecar instead.
	if len(c.Ports) != 1 || c.Ports[0].Name != "grpc" || c.Ports[0].ContainerPort != 7002 {
		t.Errorf("ports = %+v, want only grpc 7002", c.Ports)
	}
	if a := dep.Spec.Template.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9102" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations = %v, want Prometheus scraping 9102/metrics", a)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "BOURSE_LOG_FORMAT" || c.Env[0].Value != "json" {
		t.Errorf("env = %+v", c.Env)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.GRPC == nil || p.GRPC.Port != 7002 {
			t.Errorf("%s probe = %+v, want gRPC on 7002", name, p)
		}
	}
	if q := c.Resources.Requests[corev1.ResourceCPU]; q.String() != "100m" {
		t.Errorf("cpu request = %s", q.String())
	}
	if q := c.Resources.Limits[corev1.ResourceMemory]; q.String() != "256Mi" {
		t.Errorf("memory limit = %s", q.String())
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext = %+v", sc)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("pod securityContext = %+v", pod.SecurityContext)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= 10 {
		t.Errorf("terminationGracePeriodSeconds = %v, want more than the 10s drain timeout", pod.TerminationGracePeriodSeconds)
	}

	svc := &corev1.Service{}
	kubetest.Eventually(t, wait, "Service created", func() error { return k8s.Get(ctx, key, svc) })
	if err := assertControlledBy(svc, app); err != nil {
		t.Error(err)
	}
	if svc.Spec.Selector["app.kubernetes.io/name"] != "risk" {
		t.Errorf("service selector = %v", svc.Spec.Selector)
	}
	grpcPort := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "grpc" })
	if len(svc.Spec.Ports) != 1 || grpcPort < 0 || svc.Spec.Ports[grpcPort].Port != 7002 || svc.Spec.Ports[grpcPort].TargetPort.StrVal != "grpc" ||
		svc.Spec.Ports[grpcPort].AppProtocol == nil || *svc.Spec.Ports[grpcPort].AppProtocol != "grpc" {
		t.Errorf("service ports = %+v", svc.Spec.Ports)
	}

	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(vsGVK)
	kubetest.Eventually(t, wait, "VirtualService created", func() error { return k8s.Get(ctx, key, vs) })
	if err := assertControlledBy(vs, app); err != nil {
		t.Error(err)
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	if len(routes) != 1 {
		t.Fatalf("http routes = %v", routes)
	}
	route := routes[0].(map[string]any)
	if route["timeout"] != "3s" {
		t.Errorf("route timeout = %v, want 3s", route["timeout"])
	}
	dests := route["route"].([]any)
	host, _, _ := unstructured.NestedString(dests[0].(map[string]any), "destination", "host")
	if want := "risk." + ns + ".svc.cluster.local"; host != want {
		t.Errorf("destination host = %q, want %q", host, want)
	}

	kubetest.Eventually(t, wait, "VirtualService condition True", func() error {
		c := meta.FindStatusCondition(getApp(t, key).Status.Conditions, appsv1alpha1.ConditionVirtualService)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("condition = %+v", c)
		}
		return nil
	})
	// No deployment controller runs, so the Deployment never reports a replica: the truth is Pending.
	kubetest.Eventually(t, wait, "phase Pending", func() error {
		got := getApp(t, key)
		if got.Status.Phase != appsv1alpha1.PhasePending || got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("phase %q observedGeneration %d", got.Status.Phase, got.Status.ObservedGeneration)
		}
		return nil
	})
	kubetest.Eventually(t, wait, "event recorded", func() error { return hasEvent(ctx, ns, "risk", "VirtualServiceApplied") })
}

func hasEvent(ctx context.Context, ns, name, reason string) error {
	list := &eventsv1.EventList{}
	if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
		return err
	}
	var seen []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == "Application" {
			if e.Reason == reason {
				return nil
			}
			seen = append(seen, e.Reason)
		}
	}
	return fmt.Errorf("no %s event for %s (have %v)", reason, name, seen)
}

func TestSpecUpdateUpdatesChildren(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, k8s)
	app := newApp(ns, "matching")
	if err := k8s.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(app)
	dep := &appsv1.Deployment{}
	kubetest.Eventually(t, wait, "Deployment created", func() error { return k8s.Get(ctx, key, dep) })

	five := int32(5)
	updateApp(t, key, func(app *appsv1alpha1.Application) {
		app.Spec.Replicas = &five
		app.Spec.Image = "registry.example:5000/bourse/matching:v2"
		app.Spec.Port = 7003
		app.Spec.Env = append(app.Spec.Env, appsv1alpha1.EnvVar{Name: "BOURSE_MATCHING_DATA_DIR", Value: "/data"})
	})
	kubetest.Eventually(t, wait, "Deployment updated", func() error {
		if err := k8s.Get(ctx, key, dep); err != nil {
			return err
		}
		c := dep.Spec.Template.Spec.Containers[0]
		switch {
		case *dep.Spec.Replicas != 5:
			return fmt.Errorf("replicas %d", *dep.Spec.Replicas)
		case c.Image != "registry.example:5000/bourse/matching:v2":
			return fmt.Errorf("image %s", c.Image)
		case c.ReadinessProbe.GRPC.Port != 7003:
			return fmt.Errorf("probe port %d", c.ReadinessProbe.GRPC.Port)
		case !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "BOURSE_MATCHING_DATA_DIR" && e.Value == "/data" }):
			return fmt.Errorf("env %+v", c.Env)
		}
		return nil
	})
	svc := &corev1.Service{}
	kubetest.Eventually(t, wait, "Service updated", func() error {
		if err := k8s.Get(ctx, key, svc); err != nil {
			return err
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "grpc" && p.Port == 7003 }) {
			return fmt.Errorf("ports %+v", svc.Spec.Ports)
		}
		return nil
	})

	// A change made behind the operator's back to a field it owns is put back.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, key, dep); err != nil {
			return err
		}
		dep.Spec.Template.Spec.Containers[0].Image = "registry.example:5000/bourse/tampered:v0"
		return k8s.Update(ctx, dep)
	}); err != nil {
		t.Fatal(err)
	}
	kubetest.Eventually(t, wait, "drift corrected", func() error {
		if err := k8s.Get(ctx, key, dep); err != nil {
			return err
		}
		if img := dep.Spec.Template.Spec.Containers[0].Image; img != "registry.example:5000/bourse/matching:v2" {
			return fmt.Errorf("image %s", img)
		}
		return nil
	})
}

// setDeploymentStatus plays the deployment controller, which envtest does not run.
func setDeploymentStatus(t *testing.T, key client.ObjectKey, f func(dep *appsv1.Deployment)) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep := &appsv1.Deployment{}
		if err := k8s.Get(ctx, key, dep); err != nil {
			return err
		}
		dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation}
		f(dep)
		return k8s.Status().Update(ctx, dep)
	})
	if err != nil {
		t.Fatalf("update deployment status: %v", err)
	}
}

// updateApp changes the spec as a user would, retrying when the operator's status write got in
// between the read and the update.
func updateApp(t *testing.T, key client.ObjectKey, f func(*appsv1alpha1.Application)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		app := &appsv1alpha1.Application{}
		if err := k8s.Get(context.Background(), key, app); err != nil {
			return err
		}
		f(app)
		return k8s.Update(context.Background(), app)
	})
	if err != nil {
		t.Fatalf("update application: %v", err)
	}
}

func waitPhase(t *testing.T, key client.ObjectKey, phase appsv1alpha1.Phase, available int32, msg string) *appsv1alpha1.Application {
	t.Helper()
	var app *appsv1alpha1.Application
	kubetest.Eventually(t, wait, "phase "+string(phase), func() error {
		app = getApp(t, key)
		if app.Status.Phase != phase || app.Status.AvailableReplicas != available || !strings.Contains(app.Status.Message, msg) {
			return fmt.Errorf("phase %q available %d message %q", app.Status.Phase, app.Status.AvailableReplicas, app.Status.Message)
		}
		return nil
	})
	return app
}

func progressing(reason string, status corev1.ConditionStatus) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: status, Reason: reason, Message: "test: " + reason}
}

func TestStatusFollowsDeployment(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, k8s)
	app := newApp(ns, "inference")
	if err := k8s.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(app)
	kubetest.Eventually(t, wait, "Deployment created", func() error { return k8s.Get(ctx, key, &appsv1.Deployment{}) })
	waitPhase(t, key, appsv1alpha1.PhasePending, 0, "waiting for the deployment controller")

	setDeploymentStatus(t, key, func(d *appsv1.Deployment) {
		d.Status.Replicas, d.Status.UpdatedReplicas = 3, 3
		d.Status.Conditions = []appsv1.DeploymentCondition{progressing("ReplicaSetUpdated", corev1.ConditionTrue)}
	})
	waitPhase(t, key, appsv1alpha1.PhasePending, 0, "0/3 replicas available")

	setDeploymentStatus(t, key, func(d *appsv1.Deployment) {
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.ReadyReplicas = 3, 3, 1, 1
		d.Status.Conditions = []appsv1.DeploymentCondition{progressing("ReplicaSetUpdated", corev1.ConditionTrue)}
	})
	got := waitPhase(t, key, appsv1alpha1.PhaseProgressing, 1, "1 available")
	if c := meta.FindStatusCondition(got.Status.Conditions, appsv1alpha1.ConditionAvailable); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("Available condition while progressing = %+v", c)
	}

	setDeploymentStatus(t, key, func(d *appsv1.Deployment) {
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.ReadyReplicas = 3, 3, 3, 3
		d.Status.Conditions = []appsv1.DeploymentCondition{progressing("NewReplicaSetAvailable", corev1.ConditionTrue)}
	})
	got = waitPhase(t, key, appsv1alpha1.PhaseRunning, 3, "3/3 replicas available")
	if c := meta.FindStatusCondition(got.Status.Conditions, appsv1alpha1.ConditionAvailable); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Available condition while running = %+v", c)
	}
	if got.Status.Replicas != 3 {
		t.Errorf("status.replicas = %d", got.Status.Replicas)
	}
	kubetest.Eventually(t, wait, "Running event", func() error { return hasEvent(ctx, ns, "inference", "Running") })

	// A finished rollout that loses a replica is Degraded, not Running.
	setDeploymentStatus(t, key, func(d *appsv1.Deployment) {
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.ReadyReplicas = 3, 3, 2, 2
		d.Status.Conditions = []appsv1.DeploymentCondition{progressing("NewReplicaSetAvailable", corev1.ConditionTrue)}
	})
	got = waitPhase(t, key, appsv1alpha1.PhaseDegraded, 2, "2/3 replicas available")
	if c := meta.FindStatusCondition(got.Status.Conditions, appsv1alpha1.ConditionDegraded); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Degraded condition = %+v", c)
	}

	// A rollout past its progress deadline is Degraded with the deployment controller's reason.
	setDeploymentStatus(t, key, func(d *appsv1.Deployment) {
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.ReadyReplicas = 4, 1, 3, 3
		d.Status.Conditions = []appsv1.DeploymentCondition{progressing("ProgressDeadlineExceeded", corev1.ConditionFalse)}
	})
	waitPhase(t, key, appsv1alpha1.PhaseDegraded, 3, "ProgressDeadlineExceeded")

	// A spec change the deployment controller has not yet observed is Progressing again.
	updateApp(t, key, func(app *appsv1alpha1.Application) { app.Spec.Image = "registry.example:5000/bourse/inference:v2" })
	got = waitPhase(t, key, appsv1alpha1.PhaseProgressing, 3, "waiting for the deployment controller to observe generation")
	if got.Status.ObservedGeneration != got.Generation {
		t.Errorf("observedGeneration %d, generation %d", got.Status.ObservedGeneration, got.Generation)
	}
}

func TestDeleteLeavesChildrenToGarbageCollector(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, k8s)
	app := newApp(ns, "discovery")
	if err := k8s.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(app)
	dep, svc := &appsv1.Deployment{}, &corev1.Service{}
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(vsGVK)
	kubetest.Eventually(t, wait, "children created", func() error {
		return errors.Join(k8s.Get(ctx, key, dep), k8s.Get(ctx, key, svc), k8s.Get(ctx, key, vs))
	})
	if err := k8s.Delete(ctx, app); err != nil {
		t.Fatal(err)
	}
	kubetest.Eventually(t, wait, "Application gone", func() error {
		err := k8s.Get(ctx, key, &appsv1alpha1.Application{})
		if err == nil {
			return errors.New("still there")
		}
		return client.IgnoreNotFound(err)
	})
	// With no garbage collector in envtest, the children remain; each names the deleted
	// Application as its controlling owner, which is what makes a real cluster delete them.
	for _, obj := range []client.Object{dep, svc, vs} {
		if err := k8s.Get(ctx, key, obj); err != nil {
			t.Fatal(err)
		}
		if err := assertControlledBy(obj, app); err != nil {
			t.Error(err)
		}
	}
}
