package deploygen

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const sample = `
namespace: bourse
imagePrefix: bourse/
registry: r.example/bourse
tag: v1
config: {BOURSE_DRAIN_TIMEOUT: 20s, BOURSE_DEREGISTER_GRACE: 2s}
defaults: {timeout: 5s}
services:
  - {name: a, grpcPort: 7001, metricsPort: 9101, grpcService: x.A, replicas: 2, canaryWeight: 10, idempotent: [Get], streaming: [Watch]}
  - {name: b, grpcPort: 7002, metricsPort: 9102, grpcService: x.B, replicas: 1, stateful: true,
     volumes: [{name: journal, mountPath: /data, size: 1Gi, accessMode: ReadWriteOnce}],
     secretFiles: [{name: B_PEER_KEY_FILE, secret: b-peer-key, key: key, mountPath: /etc/b/peer}]}
`

func load(t *testing.T, text string) (*Table, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "services.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestTableRejectsMistakes(t *testing.T) {
	if _, err := load(t, sample); err != nil {
		t.Fatalf("sample table: %v", err)
	}
	for name, edit := range map[string][2]string{
		"duplicate port":      {"grpcPort: 7002", "grpcPort: 7001"},
		"stateful canary":     {"stateful: true", "stateful: true, canaryWeight: 5"},
		"stream + idempotent": {"streaming: [Watch]", "streaming: [Get]"},
		"unknown field":       {"replicas: 2", "replicas: 2, replica: 3"},
		"bad drain timeout":   {"20s", "twenty"},
		"file in the keyring": {"mountPath: /etc/b/peer", "mountPath: /etc/bourse/api-keys/peer"},
		"file over a volume":  {"mountPath: /etc/b/peer", "mountPath: /data"},
		"file env twice":      {"B_PEER_KEY_FILE", "BOURSE_API_KEYS_FILE"},
		"file key not a name": {"key: key", "key: ../key"},
		"file named as tmp":   {"secret: b-peer-key", "secret: tmp"},
	} {
		if _, err := load(t, strings.Replace(sample, edit[0], edit[1], 1)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCanarySplitAndStatefulSet(t *testing.T) {
	table, err := load(t, sample)
	if err != nil {
		t.Fatal(err)
	}
	a, b := table.Services[0], table.Services[1]

	w := table.workloads(a)
	if len(w) != 2 {
		t.Fatalf("workloads with a canary = %d, want 2", len(w))
	}
	canary := w[1].(*appsv1.Deployment)
	if canary.Name != "a-canary" || canary.Spec.Template.Labels["version"] != "canary" ||
		!strings.HasSuffix(canary.Spec.Template.Spec.Containers[0].Image, ":canary") {
		t.Errorf("canary deployment = %s %v %s", canary.Name, canary.Spec.Template.Labels, canary.Spec.Template.Spec.Containers[0].Image)
	}
	if stable := w[0].(*appsv1.Deployment); stable.Spec.Selector.MatchLabels["version"] != "stable" {
		t.Errorf("stable selector %v overlaps the canary", stable.Spec.Selector.MatchLabels)
	}
	http := table.virtualService(a)["spec"].(map[string]any)["http"].([]any)
	if len(http) != 3 {
		t.Fatalf("routes = %d, want streams, idempotent, default", len(http))
	}
	if r := http[0].(map[string]any); r["timeout"] != nil || r["name"] != "streams" {
		t.Errorf("stream route = %v", r)
	}
	retry := http[1].(map[string]any)["retries"].(map[string]any)
	if !strings.Contains(retry["retryOn"].(string), "unavailable") {
		t.Errorf("idempotent route retries %v", retry)
	}
	if retryOn := http[2].(map[string]any)["retries"].(map[string]any)["retryOn"].(string); strings.Contains(retryOn, "unavailable") {
		t.Errorf("default route retries non-idempotent calls on UNAVAILABLE: %s", retryOn)
	}
	dests := http[2].(map[string]any)["route"].([]any)
	if len(dests) != 2 || dests[0].(map[string]any)["weight"] != int32(90) || dests[1].(map[string]any)["weight"] != int32(10) {
		t.Errorf("split = %v, want stable 90 / canary 10", dests)
	}

	ss, ok := table.workloads(b)[0].(*appsv1.StatefulSet)
	if !ok {
		t.Fatalf("stateful service workload is %T", table.workloads(b)[0])
	}
	if len(ss.Spec.VolumeClaimTemplates) != 1 || ss.Spec.VolumeClaimTemplates[0].Name != "journal" {
		t.Errorf("claim templates = %+v", ss.Spec.VolumeClaimTemplates)
	}
	if ss.Spec.ServiceName != "b-headless" || len(table.services(b)) != 2 {
		t.Errorf("governing service %q, services %d", ss.Spec.ServiceName, len(table.services(b)))
	}
	if len(table.claims(b)) != 0 {
		t.Error("a StatefulSet's volumes must come from claim templates, not separate claims")
	}
}

// Every workload reads its own keyring from a mounted Secret, never from the environment, and a
// secret file is mounted read-only with its path in the environment.
func TestKeyringAndSecretFilesAreMounted(t *testing.T) {
	table, err := load(t, sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range table.Services {
		for _, w := range table.workloads(s) {
			var pod corev1.PodSpec
			switch x := w.(type) {
			case *appsv1.Deployment:
				pod = x.Spec.Template.Spec
			case *appsv1.StatefulSet:
				pod = x.Spec.Template.Spec
			}
			want := map[string][3]string{ // env → Secret, mount directory, file
				"BOURSE_API_KEYS_FILE": {s.Name + "-api-keys", "/etc/bourse/api-keys", "keys"},
			}
			if s.Name == "b" {
				want["B_PEER_KEY_FILE"] = [3]string{"b-peer-key", "/etc/b/peer", "key"}
			}
			c := pod.Containers[0]
			for _, e := range c.Env {
				if e.Name == "BOURSE_API_KEYS" || e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && strings.HasSuffix(e.ValueFrom.SecretKeyRef.Name, "-api-keys") {
					t.Errorf("%s: keys in the environment: %+v", s.Name, e)
				}
			}
			for env, w := range want {
				if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == env }); i < 0 || c.Env[i].Value != w[1]+"/"+w[2] {
					t.Errorf("%s: %s not %s/%s in %+v", s.Name, env, w[1], w[2], c.Env)
				}
				m := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == w[1] })
				if m < 0 || !c.VolumeMounts[m].ReadOnly || c.VolumeMounts[m].SubPath != "" {
					t.Errorf("%s: %s is not mounted read-only (and without subPath, which would stop updates): %+v", s.Name, w[1], c.VolumeMounts)
					continue
				}
				v := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[m].Name })
				if v < 0 || pod.Volumes[v].Secret == nil || pod.Volumes[v].Secret.SecretName != w[0] ||
					len(pod.Volumes[v].Secret.Items) != 1 || pod.Volumes[v].Secret.Items[0].Key != w[2] || pod.Volumes[v].Secret.Items[0].Path != w[2] {
					t.Errorf("%s: volume at %s is not key %s of Secret %s: %+v", s.Name, w[1], w[2], w[0], pod.Volumes)
				}
			}
		}
	}
}

// The kubelet must not SIGKILL a pod that is still draining.
func TestTerminationGraceCoversDrain(t *testing.T) {
	table, err := load(t, sample)
	if err != nil {
		t.Fatal(err)
	}
	drain := 20*time.Second + 2*time.Second + preStopSeconds*time.Second
	for _, s := range table.Services {
		for _, w := range table.workloads(s) {
			var got int64
			switch x := w.(type) {
			case *appsv1.Deployment:
				got = *x.Spec.Template.Spec.TerminationGracePeriodSeconds
			case *appsv1.StatefulSet:
				got = *x.Spec.Template.Spec.TerminationGracePeriodSeconds
			}
			if time.Duration(got)*time.Second <= drain {
				t.Errorf("%s: terminationGracePeriodSeconds %d does not exceed preStop + grace + drain (%s)", s.Name, got, drain)
			}
		}
	}
}
