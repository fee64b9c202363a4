package deploygen_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The metrics port also serves Go profiles, so it must not leave the pod: no Service (ClusterIP or
// headless) publishes it, no container declares it, and every service binds it on loopback and
// announces it for the sidecar's scrape.
func TestMetricsPortStaysInThePod(t *testing.T) {
	table, _ := loadTable(t)
	files, err := table.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range table.Services {
		svcDocs := docs(t, files["base/"+s.Name+"/service.yaml"])
		if len(svcDocs) == 0 {
			t.Fatalf("%s: no Service", s.Name)
		}
		for _, d := range svcDocs {
			var svc corev1.Service
			if err := yaml.Unmarshal(d, &svc); err != nil {
				t.Fatal(err)
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "grpc" || svc.Spec.Ports[0].Port != s.GRPCPort {
				t.Errorf("Service %s publishes %+v, want only grpc %d", svc.Name, svc.Spec.Ports, s.GRPCPort)
			}
		}
		var w struct {
			Spec struct {
				Template corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		}
		wdocs := docs(t, files["base/"+s.Name+"/workload.yaml"])
		if len(wdocs) == 0 {
			t.Fatalf("%s: no workload", s.Name)
		}
		if err := yaml.Unmarshal(wdocs[0], &w); err != nil {
			t.Fatal(err)
		}
		pod := w.Spec.Template
		for _, c := range pod.Spec.Containers {
			if slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == s.MetricsPort }) {
				t.Errorf("%s: container %s declares the metrics port: %+v", s.Name, c.Name, c.Ports)
			}
			i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "BOURSE_METRICS_ADDR" })
			if want := fmt.Sprintf("127.0.0.1:%d", s.MetricsPort); i < 0 || c.Env[i].Value != want {
				t.Errorf("%s: BOURSE_METRICS_ADDR is not %s (env %v)", s.Name, want, c.Env)
			}
		}
		if a := pod.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != fmt.Sprint(s.MetricsPort) || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("%s: pod annotations %v do not announce the metrics for scraping", s.Name, a)
		}
	}
}

// docs splits a multi-document YAML file.
func docs(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if strings.TrimSpace(string(d)) != "" && strings.TrimSpace(string(d)) != "---" {
			out = append(out, d)
		}
	}
	return out
}
