package controller

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
)

// TerminationGraceSeconds exceeds the service runtime's default --drain-timeout (10s) plus its
// deregister grace, so the kubelet's SIGKILL never cuts a drain short.
const TerminationGraceSeconds = 30

// desiredDeployment is the Deployment an Application asks for, as a server-side apply
// configuration: only the fields listed here are owned by the operator.
func desiredDeployment(app *appsv1alpha1.Application) *appsv1ac.DeploymentApplyConfiguration {
	replicas := int32(1)
	if app.Spec.Replicas != nil {
		replicas = *app.Spec.Replicas
	}
	return appsv1ac.Deployment(app.Name, app.Namespace).
		WithLabels(childLabels(app)).
		WithOwnerReferences(ownerRef(app)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(app))).
			WithStrategy(appsv1ac.DeploymentStrategy().
				WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDeployment().
					WithMaxUnavailable(intstr.FromInt32(0)).
					WithMaxSurge(intstr.FromInt32(1)))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(childLabels(app)).
				WithAnnotations(scrapeAnnotations(app)).
				WithSpec(corev1ac.PodSpec().
					WithTerminationGracePeriodSeconds(TerminationGraceSeconds).
					WithAutomountServiceAccountToken(false).
					WithSecurityContext(corev1ac.PodSecurityContext().
						WithRunAsNonRoot(true).
						WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
					WithContainers(container(app)))))
}

func container(app *appsv1alpha1.Application) *corev1ac.ContainerApplyConfiguration {
	c := corev1ac.Container().
		WithName("app").
		WithImage(app.Spec.Image).
		WithPorts(corev1ac.ContainerPort().WithName("grpc").WithContainerPort(app.Spec.Port).WithProtocol(corev1.ProtocolTCP)).
		// Kubernetes' native gRPC probe calls grpc.health.v1.Health/Check on the server's
		// overall status, which the runtime flips to NOT_SERVING first thing on SIGTERM.
		WithReadinessProbe(corev1ac.Probe().
			WithGRPC(corev1ac.GRPCAction().WithPort(app.Spec.Port)).
			WithPeriodSeconds(5).WithFailureThreshold(2)).
		WithLivenessProbe(corev1ac.Probe().
			WithGRPC(corev1ac.GRPCAction().WithPort(app.Spec.Port)).
			WithInitialDelaySeconds(10).WithPeriodSeconds(10).WithFailureThreshold(3)).
		WithSecurityContext(corev1ac.SecurityContext().
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")))
	for _, e := range app.Spec.Env {
		c.WithEnv(corev1ac.EnvVar().WithName(e.Name).WithValue(e.Value))
	}
	if r := app.Spec.Resources; r != nil {
		rr := corev1ac.ResourceRequirements()
		if len(r.Requests) > 0 {
			rr.WithRequests(r.Requests)
		}
		if len(r.Limits) > 0 {
			rr.WithLimits(r.Limits)
		}
		c.WithResources(rr)
	}
	return c
}

// scrapeAnnotations ask Prometheus to scrape the metrics port. It is declared in no Service and
// no containerPort, since it also serves Go profiles: the service binds it on the pod's loopback
// (BOURSE_METRICS_ADDR=127.0.0.1:<port>), and the Istio sidecar's agent scrapes it on localhost
// and serves it merged with its own metrics on :15020/stats/prometheus.
func scrapeAnnotations(app *appsv1alpha1.Application) map[string]string {
	if app.Spec.MetricsPort == 0 {
		return nil
	}
	return map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   strconv.Itoa(int(app.Spec.MetricsPort)),
		"prometheus.io/path":   "/metrics",
	}
}
