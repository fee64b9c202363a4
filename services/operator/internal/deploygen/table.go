// Package deploygen generates the per-service Kubernetes and Istio manifests under deploy/base
// from the one services table, deploy/services.yaml.
package deploygen

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"time"

	"sigs.k8s.io/yaml"
)

// Table is deploy/services.yaml.
type Table struct {
	Namespace   string            `json:"namespace"`
	ImagePrefix string            `json:"imagePrefix"`
	Registry    string            `json:"registry"`
	Tag         string            `json:"tag"`
	Config      map[string]string `json:"config"`
	Defaults    Defaults          `json:"defaults"`
	Services    []Service         `json:"services"`
}

// Defaults apply to every service that does not set the field.
type Defaults struct {
	Timeout   string    `json:"timeout"`
	Resources Resources `json:"resources"`
}

// Service is one row of the table.
type Service struct {
	Name        string `json:"name"`
	GRPCPort    int32  `json:"grpcPort"`
	MetricsPort int32  `json:"metricsPort"`
	// GRPCService is the fully qualified proto service, used to match methods in Istio routes.
	GRPCService string `json:"grpcService"`
	// Dockerfile under deploy/docker (default Dockerfile, the static one).
	Dockerfile string `json:"dockerfile,omitempty"`
	Replicas   int32  `json:"replicas"`
	// Strategy of a Deployment: RollingUpdate (default) or Recreate.
	Strategy string `json:"strategy,omitempty"`
	// Stateful services run as a StatefulSet whose volumes are volumeClaimTemplates.
	Stateful  bool       `json:"stateful,omitempty"`
	Volumes   []Volume   `json:"volumes,omitempty"`
	Autoscale *Autoscale `json:"autoscale,omitempty"`
	// Env is plain environment, SecretEnv environment from Secrets.
	Env       map[string]string `json:"env,omitempty"`
	SecretEnv []SecretEnv       `json:"secretEnv,omitempty"`
	// Idempotent methods are retried by Istio on UNAVAILABLE; Streaming methods get no timeout.
	Idempotent []string   `json:"idempotent,omitempty"`
	Streaming  []string   `json:"streaming,omitempty"`
	Timeout    string     `json:"timeout,omitempty"`
	Resources  *Resources `json:"resources,omitempty"`
	// CanaryWeight (0-100) sends that share of traffic to a "<name>-canary" workload labelled
	// version: canary, whose image tag is "canary".
	CanaryWeight int32 `json:"canaryWeight,omitempty"`
}

// Volume is a persistent volume mounted into the service.
type Volume struct {
	Name       string `json:"name"`
	MountPath  string `json:"mountPath"`
	Size       string `json:"size"`
	AccessMode string `json:"accessMode"`
	ReadOnly   bool   `json:"readOnly,omitempty"`
}

// Autoscale configures a HorizontalPodAutoscaler on CPU.
type Autoscale struct {
	MinReplicas    int32 `json:"minReplicas"`
	MaxReplicas    int32 `json:"maxReplicas"`
	CPUUtilization int32 `json:"cpuUtilization"`
}

// SecretEnv is one environment variable read from a Secret key.
type SecretEnv struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
	Key    string `json:"key"`
}

// Resources are container requests and limits as quantities.
type Resources struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

// Load reads and checks the table.
func Load(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := &Table{}
	if err := yaml.UnmarshalStrict(data, t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

var dnsLabel = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,40}[a-z0-9])?$`)

func (t *Table) validate() error {
	if !dnsLabel.MatchString(t.Namespace) {
		return fmt.Errorf("namespace %q is not a DNS label", t.Namespace)
	}
	if _, err := time.ParseDuration(t.Config["BOURSE_DRAIN_TIMEOUT"]); err != nil {
		return fmt.Errorf("config.BOURSE_DRAIN_TIMEOUT: %w", err)
	}
	if _, err := time.ParseDuration(t.Config["BOURSE_DEREGISTER_GRACE"]); err != nil {
		return fmt.Errorf("config.BOURSE_DEREGISTER_GRACE: %w", err)
	}
	seenName, seenPort := map[string]bool{}, map[int32]string{}
	for _, s := range t.Services {
		switch {
		case !dnsLabel.MatchString(s.Name):
			return fmt.Errorf("service name %q is not a DNS label", s.Name)
		case seenName[s.Name]:
			return fmt.Errorf("service %s listed twice", s.Name)
		case s.GRPCPort < 1 || s.MetricsPort < 1 || s.GRPCPort == s.MetricsPort:
			return fmt.Errorf("%s: grpcPort and metricsPort must be distinct ports", s.Name)
		case seenPort[s.GRPCPort] != "" || seenPort[s.MetricsPort] != "":
			return fmt.Errorf("%s: port already used by another service", s.Name)
		case s.GRPCService == "":
			return fmt.Errorf("%s: grpcService is required", s.Name)
		case s.Strategy != "" && s.Strategy != "RollingUpdate" && s.Strategy != "Recreate":
			return fmt.Errorf("%s: strategy %q", s.Name, s.Strategy)
		case s.Stateful && s.Autoscale != nil:
			return fmt.Errorf("%s: a stateful service is not autoscaled", s.Name)
		case s.Stateful && s.CanaryWeight > 0:
			return fmt.Errorf("%s: a stateful service has no canary", s.Name)
		case s.CanaryWeight < 0 || s.CanaryWeight > 100:
			return fmt.Errorf("%s: canaryWeight %d not in 0..100", s.Name, s.CanaryWeight)
		}
		for _, m := range s.Streaming {
			if slices.Contains(s.Idempotent, m) {
				return fmt.Errorf("%s: %s is listed as both streaming and idempotent", s.Name, m)
			}
		}
		seenName[s.Name] = true
		seenPort[s.GRPCPort], seenPort[s.MetricsPort] = s.Name, s.Name
	}
	return nil
}

// timeout is the service's route timeout.
func (t *Table) timeout(s Service) string {
	if s.Timeout != "" {
		return s.Timeout
	}
	return t.Defaults.Timeout
}

func (t *Table) resources(s Service) Resources {
	if s.Resources != nil {
		return *s.Resources
	}
	return t.Defaults.Resources
}

func (s Service) dockerfile() string {
	if s.Dockerfile != "" {
		return s.Dockerfile
	}
	return "Dockerfile"
}

// Image is the name the service's image is built under.
func (t *Table) Image(s Service) string { return t.ImagePrefix + s.Name }

// Names lists the services in table order.
func (t *Table) Names() []string {
	var out []string
	for _, s := range t.Services {
		out = append(out, s.Name)
	}
	return out
}
