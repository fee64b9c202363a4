// Package modelconfig reads a model's config.json: its tensors, batching, version policy and
// response cache. One file per model, beside the numbered version directories.
package modelconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// FileName is the config file in each model directory.
const FileName = "config.json"

// Config is what a model directory declares about the model.
type Config struct {
	// Platform names the backend; "onnxruntime_onnx" (the default) is the only one built in.
	Platform string `json:"platform"`
	// MaxBatchSize > 0 means every input and output has a leading batch dimension not listed in
	// Dims, and requests may carry 1..MaxBatchSize rows. 0 means the model takes exact shapes.
	MaxBatchSize int `json:"max_batch_size"`
	// Inputs and Outputs the server exposes. Outputs may be a subset of the model's.
	Inputs  []TensorSpec `json:"inputs"`
	Outputs []TensorSpec `json:"outputs"`
	// DynamicBatching, when present, merges concurrent requests into one execution.
	DynamicBatching *Batching `json:"dynamic_batching,omitempty"`
	// VersionPolicy chooses which versions on disk are served (default: the latest one).
	VersionPolicy VersionPolicy `json:"version_policy"`
	// ResponseCache caches responses by input bytes (off by default).
	ResponseCache bool `json:"response_cache"`
	// Instances is how many executions of one version may run at once (default 1).
	Instances int `json:"instances"`
	// MaxQueueSize bounds the requests of a version waiting for an execution, with or without
	// dynamic batching; beyond it requests are refused (default 1024). dynamic_batching's own
	// max_queue_size, when set, takes its place for a batched model.
	MaxQueueSize int `json:"max_queue_size"`
	// Allow lists who may use the model (infer, read its metadata and readiness); absent, every
	// authenticated caller may. See Access.
	Allow Access `json:"allow,omitempty"`
}

// TensorSpec declares an input or output.
type TensorSpec struct {
	Name     string          `json:"name"`
	Datatype tensor.Datatype `json:"datatype"`
	// Dims excludes the batch dimension when MaxBatchSize > 0; -1 marks a variable size.
	Dims []int64 `json:"dims"`
}

// Batching tunes the dynamic batcher.
type Batching struct {
	// MaxQueueDelay is how long the first request of a batch may wait for others.
	MaxQueueDelay Duration `json:"max_queue_delay"`
	// PreferredBatchSizes end a batch early once it reaches one of them and nothing else waits.
	PreferredBatchSizes []int `json:"preferred_batch_sizes"`
	// MaxQueueSize bounds the waiting requests; beyond it requests are refused (default: the
	// model's max_queue_size).
	MaxQueueSize int `json:"max_queue_size"`
	// StopWhenAllQueued executes as soon as a batch holds every request submitted, instead of
	// waiting out max_queue_delay: for callers in the same process that wait for each answer.
	StopWhenAllQueued bool `json:"stop_when_all_queued"`
}

// VersionPolicy chooses versions: Latest N, All, or Specific ones. At most one may be set.
type VersionPolicy struct {
	Latest   int     `json:"latest,omitempty"`
	All      bool    `json:"all,omitempty"`
	Specific []int64 `json:"specific,omitempty"`
}

// Duration reads "500us"-style durations in JSON.
type Duration time.Duration

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"500us\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Load reads and validates the config file of a model directory.
func Load(modelDir string) (Config, []byte, error) {
	b, err := os.ReadFile(filepath.Join(modelDir, FileName))
	if err != nil {
		return Config{}, nil, err
	}
	c, err := Parse(b)
	return c, b, err
}

// Parse decodes and validates a config, filling defaults.
func Parse(b []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", FileName, err)
	}
	if c.Platform == "" {
		c.Platform = PlatformONNX
	}
	if c.Instances == 0 {
		c.Instances = 1
	}
	if c.MaxQueueSize == 0 {
		c.MaxQueueSize = DefaultMaxQueueSize
	}
	if c.DynamicBatching != nil && c.DynamicBatching.MaxQueueSize == 0 {
		c.DynamicBatching.MaxQueueSize = c.MaxQueueSize
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", FileName, err)
	}
	return c, nil
}

// PlatformONNX is the platform of ONNX models run by onnxruntime.
const PlatformONNX = "onnxruntime_onnx"

// DefaultMaxQueueSize is the queue bound of a model whose config sets none, and maxQueueSize the
// largest accepted: each waiting request holds its decoded inputs in memory.
const (
	DefaultMaxQueueSize = 1024
	maxQueueSize        = 1 << 16
)

func (c *Config) validate() error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if c.MaxBatchSize < 0 {
		bad("max_batch_size %d is negative", c.MaxBatchSize)
	}
	if c.Instances < 1 || c.Instances > 64 {
		bad("instances %d is outside 1-64", c.Instances)
	}
	if c.MaxQueueSize < 1 || c.MaxQueueSize > maxQueueSize {
		bad("max_queue_size %d is outside 1-%d", c.MaxQueueSize, maxQueueSize)
	}
	if err := c.Allow.validate(); err != nil {
		bad("allow: %v", err)
	}
	if len(c.Inputs) == 0 {
		bad("inputs: at least one is needed")
	}
	if len(c.Outputs) == 0 {
		bad("outputs: at least one is needed")
	}
	for kind, specs := range map[string][]TensorSpec{"inputs": c.Inputs, "outputs": c.Outputs} {
		seen := map[string]bool{}
		for _, s := range specs {
			switch {
			case s.Name == "":
				bad("%s: a tensor has no name", kind)
			case seen[s.Name]:
				bad("%s: %q is declared twice", kind, s.Name)
			case s.Datatype == tensor.Invalid:
				bad("%s[%q]: datatype is missing", kind, s.Name)
			case s.Datatype == tensor.Bytes && c.MaxBatchSize > 0:
				bad("%s[%q]: BYTES tensors cannot be batched", kind, s.Name)
			}
			seen[s.Name] = true
			for _, d := range s.Dims {
				if d < -1 {
					bad("%s[%q]: dimension %d is neither -1 nor a size", kind, s.Name, d)
				}
				if d == -1 && c.DynamicBatching != nil && kind == "inputs" {
					bad("%s[%q]: dynamic batching needs fixed dimensions besides the batch", kind, s.Name)
				}
			}
		}
	}
	if b := c.DynamicBatching; b != nil {
		if c.MaxBatchSize == 0 {
			bad("dynamic_batching needs max_batch_size > 0")
		}
		if b.MaxQueueDelay < 0 || time.Duration(b.MaxQueueDelay) > time.Second {
			bad("dynamic_batching.max_queue_delay %v is outside 0-1s", time.Duration(b.MaxQueueDelay))
		}
		if b.MaxQueueSize < 1 || b.MaxQueueSize > maxQueueSize {
			bad("dynamic_batching.max_queue_size %d is outside 1-%d", b.MaxQueueSize, maxQueueSize)
		}
		for _, p := range b.PreferredBatchSizes {
			if p < 1 || p > c.MaxBatchSize {
				bad("dynamic_batching.preferred_batch_sizes: %d is outside 1-%d", p, c.MaxBatchSize)
			}
		}
		slices.Sort(b.PreferredBatchSizes)
	}
	set := 0
	if c.VersionPolicy.Latest != 0 {
		set++
	}
	if c.VersionPolicy.All {
		set++
	}
	if len(c.VersionPolicy.Specific) > 0 {
		set++
	}
	if set > 1 {
		bad("version_policy: set only one of latest, all, specific")
	}
	if c.VersionPolicy.Latest < 0 {
		bad("version_policy.latest %d is negative", c.VersionPolicy.Latest)
	}
	if set == 0 {
		c.VersionPolicy.Latest = 1
	}
	return errors.Join(problems...)
}

// Input returns the declared input of that name.
func (c *Config) Input(name string) (TensorSpec, bool) { return find(c.Inputs, name) }

// Output returns the declared output of that name.
func (c *Config) Output(name string) (TensorSpec, bool) { return find(c.Outputs, name) }

func find(specs []TensorSpec, name string) (TensorSpec, bool) {
	for _, s := range specs {
		if s.Name == name {
			return s, true
		}
	}
	return TensorSpec{}, false
}

// FullShape is the shape clients see: the batch dimension (-1) first when the model batches.
func (c *Config) FullShape(s TensorSpec) []int64 {
	if c.MaxBatchSize > 0 {
		return append([]int64{-1}, s.Dims...)
	}
	return slices.Clone(s.Dims)
}
