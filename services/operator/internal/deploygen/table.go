// Package deploygen generates the per-service Kubernetes and Istio manifests under deploy/base
// from the one services table, deploy/services.yaml.
package deploygen

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
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
	// Env is plain environment, SecretEnv environment from Secrets, SecretFiles Secret keys
	// mounted as files whose paths are passed in the environment. (Every service also mounts its
	// keyring, the Secret <name>-api-keys; see apiKeysDir.)
	Env         map[string]string `json:"env,omitempty"`
	SecretEnv   []SecretEnv       `json:"secretEnv,omitempty"`
	SecretFiles []SecretFile      `json:"secretFiles,omitempty"`
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

// SecretFile is one key of a Secret mounted read-only as the file <mountPath>/<key>, whose path
// is the environment variable Name. A mounted Secret is updated in place (an atomic symlink swap),
// so a service that re-reads the file picks up a rotated value without a restart; an environment
// variable would keep the old value until the pod is replaced.
type SecretFile struct {
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	Key       string `json:"key"`
	MountPath string `json:"mountPath"`
}

// Path is the file the service reads.
func (f SecretFile) Path() string { return path.Join(f.MountPath, f.Key) }

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
		if err := s.validateMounts(); err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
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

var (
	envName   = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// validateMounts checks that the service's volumes, secret files and environment collide neither
// with each other nor with what every workload gets (/tmp, the keyring, the runtime's addresses).
func (s Service) validateMounts() error {
	volumes := map[string]bool{"tmp": true, apiKeysVolume: true}
	var paths []string
	mount := func(what, p string) error {
		if !path.IsAbs(p) {
			return fmt.Errorf("%s: mountPath %q is not absolute", what, p)
		}
		for _, q := range append([]string{"/tmp", apiKeysDir}, paths...) {
			if within(p, q) || within(q, p) {
				return fmt.Errorf("%s: mountPath %s overlaps %s", what, p, q)
			}
		}
		paths = append(paths, path.Clean(p))
		return nil
	}
	env := map[string]bool{}
	for _, e := range s.runtimeEnv() {
		env[e.Name] = true
	}
	for k := range s.Env {
		if env[k] {
			return fmt.Errorf("env %s is set by the generator", k)
		}
		env[k] = true
	}
	for _, v := range s.Volumes {
		if !dnsLabel.MatchString(v.Name) || volumes[v.Name] {
			return fmt.Errorf("volume name %q is not a DNS label or is taken", v.Name)
		}
		if err := mount("volume "+v.Name, v.MountPath); err != nil {
			return err
		}
		volumes[v.Name] = true
	}
	for _, e := range s.SecretEnv {
		if !envName.MatchString(e.Name) || env[e.Name] {
			return fmt.Errorf("secretEnv %q is not an environment name or is set twice", e.Name)
		}
		env[e.Name] = true
	}
	for _, f := range s.SecretFiles {
		switch {
		case !envName.MatchString(f.Name) || env[f.Name]:
			return fmt.Errorf("secretFiles %q is not an environment name or is set twice", f.Name)
		case !dnsLabel.MatchString(f.Secret) || volumes[f.Secret]: // the Secret's name is its volume's
			return fmt.Errorf("secretFiles %s: secret %q is not a DNS label or is mounted twice", f.Name, f.Secret)
		case !secretKey.MatchString(f.Key) || strings.Trim(f.Key, ".") == "":
			return fmt.Errorf("secretFiles %s: key %q is not a Secret key", f.Name, f.Key)
		}
		if err := mount("secretFiles "+f.Name, f.MountPath); err != nil {
			return err
		}
		env[f.Name], volumes[f.Secret] = true, true
	}
	return nil
}

// within reports whether p is q or below it.
func within(p, q string) bool {
	p, q = path.Clean(p), path.Clean(q)
	return p == q || strings.HasPrefix(p, strings.TrimSuffix(q, "/")+"/")
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
