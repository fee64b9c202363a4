package deploygen

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// services: the ClusterIP Service (both stable and canary pods), and for a StatefulSet its
// headless governing Service. Only the gRPC port, named grpc with appProtocol so Istio needs no
// sniffing: the metrics port also serves Go profiles and stays inside the pod (see podTemplate).
func (t *Table) services(s Service) []any {
	ports := []corev1.ServicePort{
		{Name: "grpc", Port: s.GRPCPort, TargetPort: intstr.FromString("grpc"), Protocol: corev1.ProtocolTCP, AppProtocol: new("grpc")},
	}
	sel := map[string]string{"app.kubernetes.io/name": s.Name}
	out := []any{&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: labels(s, "stable")},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: sel, Ports: ports},
	}}
	if s.Stateful {
		out = append(out, &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: s.Name + "-headless", Labels: labels(s, "stable")},
			Spec: corev1.ServiceSpec{
				ClusterIP: corev1.ClusterIPNone, Selector: sel, Ports: ports,
				// Peers and operators can reach a pod before it is ready (e.g. during replay).
				PublishNotReadyAddresses: true,
			},
		})
	}
	return out
}

// pdb lets a voluntary disruption (node drain) take one pod at a time. maxUnavailable rather
// than minAvailable: with a single replica, minAvailable 1 would block every drain forever.
func (t *Table) pdb(s Service) any {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: labels(s, "stable")},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: new(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": s.Name}},
		},
	}
}

func (t *Table) hpa(s Service) any {
	a := s.Autoscale
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: labels(s, "stable")},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: s.Name},
			MinReplicas:    new(a.MinReplicas),
			MaxReplicas:    a.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(a.CPUUtilization)},
				},
			}},
			// Scale down slowly: each removed pod drains its streams and long polls.
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: new(int32(300)),
					Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 60}},
				},
			},
		},
	}
}
