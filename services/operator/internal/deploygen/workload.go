package deploygen

import (
	"fmt"
	"maps"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// preStopSeconds keeps a terminating pod serving while Kubernetes and the mesh stop sending it
// new requests; only then does SIGTERM start the runtime's own drain.
const preStopSeconds = 5

// nonroot is the uid and gid of the distroless "nonroot" user the images run as.
const nonroot = 65532

// TerminationGraceSeconds covers the preStop pause, the runtime's deregister grace and its drain
// timeout, plus a margin, so the kubelet's SIGKILL never cuts a drain short.
func (t *Table) TerminationGraceSeconds() int64 {
	drain, _ := time.ParseDuration(t.Config["BOURSE_DRAIN_TIMEOUT"])
	grace, _ := time.ParseDuration(t.Config["BOURSE_DEREGISTER_GRACE"])
	return preStopSeconds + int64((drain+grace).Seconds()+0.999) + 5
}

func labels(s Service, version string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":    s.Name,
		"app.kubernetes.io/part-of": "bourse",
		"version":                   version,
	}
}

// selector must not change after creation, and keeps stable and canary pods apart.
func selector(s Service, version string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": s.Name, "version": version}}
}

func (t *Table) podTemplate(s Service, version string) corev1.PodTemplateSpec {
	tag := t.Tag
	if version == "canary" {
		tag = "canary"
	}
	c := corev1.Container{
		Name:            s.Name,
		Image:           t.Image(s) + ":" + tag,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Ports: []corev1.ContainerPort{
			{Name: "grpc", ContainerPort: s.GRPCPort, Protocol: corev1.ProtocolTCP},
		},
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "bourse-config"}}}},
		Env:     t.env(s),
		// Kubernetes' native gRPC probes call grpc.health.v1.Health/Check on the server's
		// overall status, which the runtime sets NOT_SERVING first thing on SIGTERM.
		StartupProbe:   grpcProbe(s.GRPCPort, 0, 2, 60),
		ReadinessProbe: grpcProbe(s.GRPCPort, 0, 5, 2),
		LivenessProbe:  grpcProbe(s.GRPCPort, 0, 10, 3),
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Sleep: &corev1.SleepAction{Seconds: preStopSeconds},
		}},
		Resources: t.resourceRequirements(s),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: new(false),
			ReadOnlyRootFilesystem:   new(true),
			RunAsNonRoot:             new(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}
	volumes := []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	v, m := secretVolume(apiKeysVolume, apiKeysFile(s))
	volumes, c.VolumeMounts = append(volumes, v), append(c.VolumeMounts, m)
	for _, f := range s.SecretFiles { // each in a volume named after its Secret
		v, m := secretVolume(f.Secret, f)
		volumes, c.VolumeMounts = append(volumes, v), append(c.VolumeMounts, m)
	}
	for _, v := range s.Volumes {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: v.MountPath, ReadOnly: v.ReadOnly})
		if !s.Stateful { // a StatefulSet's volumes come from its claim templates
			volumes = append(volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: s.Name + "-" + v.Name, ReadOnly: v.ReadOnly},
			}})
		}
	}
	// Metrics and profiles listen on the pod's loopback only (BOURSE_METRICS_ADDR), in no Service
	// and no containerPort: a profile endpoint is for operators, through kubectl port-forward.
	// Prometheus gets the metrics through the Istio sidecar, whose agent scrapes the annotated
	// port on localhost and serves them merged with its own on :15020/stats/prometheus.
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels: labels(s, version),
			Annotations: map[string]string{
				"prometheus.io/scrape": "true",
				"prometheus.io/port":   fmt.Sprint(s.MetricsPort),
				"prometheus.io/path":   "/metrics",
			},
		},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(t.TerminationGraceSeconds()),
			AutomountServiceAccountToken:  new(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   new(true),
				RunAsUser:      new(int64(nonroot)),
				RunAsGroup:     new(int64(nonroot)),
				FSGroup:        new(int64(nonroot)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{c},
			Volumes:    volumes,
		},
	}
}

func grpcProbe(port int32, delay, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port}},
		InitialDelaySeconds: delay,
		PeriodSeconds:       period,
		FailureThreshold:    failures,
		TimeoutSeconds:      2,
	}
}

// The keyring: every service mounts its own Secret <name>-api-keys, whose key "keys" holds one
// key=role:subject per line, and reads it through BOURSE_API_KEYS_FILE. Mounted rather than passed
// as environment, so a rotated keyring reaches the running service (it re-reads the file) and a
// service sees only the keys it accepts.
const (
	apiKeysVolume = "api-keys"
	apiKeysDir    = "/etc/bourse/api-keys"
	apiKeysKey    = "keys"
)

func apiKeysFile(s Service) SecretFile {
	return SecretFile{Name: "BOURSE_API_KEYS_FILE", Secret: s.Name + "-api-keys", Key: apiKeysKey, MountPath: apiKeysDir}
}

// runtimeEnv: gRPC on every interface, metrics and profiles on loopback, advertise the pod IP in
// Consul, the keyring's path.
func (s Service) runtimeEnv() []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: "BOURSE_GRPC_ADDR", Value: fmt.Sprintf("0.0.0.0:%d", s.GRPCPort)},
		{Name: "BOURSE_METRICS_ADDR", Value: fmt.Sprintf("127.0.0.1:%d", s.MetricsPort)},
		{Name: "BOURSE_ADVERTISE_HOST", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "OTEL_SERVICE_NAME", Value: s.Name},
		{Name: apiKeysFile(s).Name, Value: apiKeysFile(s).Path()},
	}
}

// env is the runtime's variables, then the service's own: plain, from Secrets, and the paths of
// its secret files. Shared settings come from the bourse-config ConfigMap.
func (t *Table) env(s Service) []corev1.EnvVar {
	env := s.runtimeEnv()
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, corev1.EnvVar{Name: k, Value: s.Env[k]})
	}
	for _, e := range s.SecretEnv {
		env = append(env, secretEnv(e))
	}
	for _, f := range s.SecretFiles {
		env = append(env, corev1.EnvVar{Name: f.Name, Value: f.Path()})
	}
	return env
}

// secretVolume mounts one key of a Secret read-only at f.MountPath. Listing the key (no subPath)
// keeps the kubelet's in-place updates, and a Secret without it fails the pod's start with an
// event naming the key. Files are root-owned, readable by the pod's fsGroup (the runtime's user).
func secretVolume(volume string, f SecretFile) (corev1.Volume, corev1.VolumeMount) {
	return corev1.Volume{Name: volume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  f.Secret,
			Items:       []corev1.KeyToPath{{Key: f.Key, Path: f.Key}},
			DefaultMode: new(int32(0o440)),
		}}},
		corev1.VolumeMount{Name: volume, MountPath: f.MountPath, ReadOnly: true}
}

func secretEnv(e SecretEnv) corev1.EnvVar {
	return corev1.EnvVar{Name: e.Name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: e.Secret}, Key: e.Key,
	}}}
}

func (t *Table) resourceRequirements(s Service) corev1.ResourceRequirements {
	r := t.resources(s)
	list := func(m map[string]string) corev1.ResourceList {
		if len(m) == 0 {
			return nil
		}
		out := corev1.ResourceList{}
		for k, v := range m {
			out[corev1.ResourceName(k)] = resource.MustParse(v)
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: list(r.Requests), Limits: list(r.Limits)}
}

// workloads is the service's StatefulSet, or its Deployment (and canary Deployment).
func (t *Table) workloads(s Service) []any {
	meta := metav1.ObjectMeta{Name: s.Name, Labels: labels(s, "stable")}
	if s.Stateful {
		var claims []corev1.PersistentVolumeClaim
		for _, v := range s.Volumes {
			claims = append(claims, t.claim(s, v, v.Name))
		}
		return []any{&appsv1.StatefulSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: meta,
			Spec: appsv1.StatefulSetSpec{
				Replicas:             new(s.Replicas),
				ServiceName:          s.Name + "-headless",
				Selector:             selector(s, "stable"),
				Template:             t.podTemplate(s, "stable"),
				VolumeClaimTemplates: claims,
				// The journal outlives the pod and the StatefulSet: it is the only copy.
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
					WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				},
			},
		}}
	}
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Selector:             selector(s, "stable"),
			Template:             t.podTemplate(s, "stable"),
			RevisionHistoryLimit: new(int32(5)),
		},
	}
	// With an autoscaler, replicas belong to it: leaving the field out keeps `kubectl apply`
	// from resetting what the autoscaler chose.
	if s.Autoscale == nil {
		dep.Spec.Replicas = new(s.Replicas)
	}
	if s.Strategy == "Recreate" {
		dep.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	out := []any{dep}
	if s.CanaryWeight > 0 {
		out = append(out, &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: s.Name + "-canary", Labels: labels(s, "canary")},
			Spec: appsv1.DeploymentSpec{
				Replicas: new(int32(1)),
				Selector: selector(s, "canary"),
				Template: t.podTemplate(s, "canary"),
			},
		})
	}
	return out
}

func (t *Table) claim(s Service, v Volume, name string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/name": s.Name, "app.kubernetes.io/part-of": "bourse"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.PersistentVolumeAccessMode(v.AccessMode)},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(v.Size)}},
		},
	}
}

// claims are the PersistentVolumeClaims of a Deployment's volumes.
func (t *Table) claims(s Service) []any {
	if s.Stateful {
		return nil
	}
	var out []any
	for _, v := range s.Volumes {
		c := t.claim(s, v, s.Name+"-"+v.Name)
		out = append(out, &c)
	}
	return out
}
