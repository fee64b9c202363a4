package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Jaeger is a running Jaeger with in-memory storage.
type Jaeger struct {
	OTLPEndpoint string // gRPC, for OTEL_EXPORTER_OTLP_ENDPOINT
	QueryURL     string // HTTP query API and UI
}

// StartJaeger runs ./bin/jaeger with deploy/local/jaeger.yaml on free loopback ports (retrying with
// fresh ports if another process takes one of them).
func StartJaeger(t testing.TB) *Jaeger {
	t.Helper()
	bin := Tool(t, "jaeger")
	cfg := filepath.Join(RepoRoot(t), "deploy", "local", "jaeger.yaml")
	return withFreshPorts(t, "jaeger", func() (*Jaeger, error) { return startJaeger(t, bin, cfg) })
}

func startJaeger(t testing.TB, bin, cfg string) (*Jaeger, error) {
	otlp, ui, health := pickPort(t), pickPort(t), pickPort(t)
	logPath := filepath.Join(t.TempDir(), "jaeger.log")
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("JAEGER_OTLP_GRPC_PORT=%d", otlp), fmt.Sprintf("JAEGER_OTLP_HTTP_PORT=%d", pickPort(t)),
		fmt.Sprintf("JAEGER_UI_PORT=%d", ui), fmt.Sprintf("JAEGER_QUERY_GRPC_PORT=%d", pickPort(t)),
		fmt.Sprintf("JAEGER_HEALTH_PORT=%d", health))
	exited := startBackground(t, cmd, logPath, os.Interrupt)
	j := &Jaeger{OTLPEndpoint: fmt.Sprintf("http://127.0.0.1:%d", otlp), QueryURL: fmt.Sprintf("http://127.0.0.1:%d", ui)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/status", health))
		if err == nil {
			resp.Body.Close()
			// A Jaeger that lost one of its ports exits: healthy and running is this one.
			if resp.StatusCode == http.StatusOK && !hasExited(exited) {
				return j, nil
			}
		}
		if hasExited(exited) {
			return nil, exitError("jaeger", readFile(logPath))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("jaeger not healthy in 30s:\n%s", readFile(logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Span is one span of a trace as Jaeger's query API returns it.
type Span struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Service string `json:"-"`
}

// Trace fetches a trace by id; it returns nil while Jaeger has not stored it.
func (j *Jaeger) Trace(t testing.TB, traceID string) []Span {
	t.Helper()
	resp, err := http.Get(j.QueryURL + "/api/traces/" + traceID)
	if err != nil {
		t.Fatalf("jaeger query: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var body struct {
		Data []struct {
			Spans     []Span `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("jaeger query: %v", err)
	}
	var spans []Span
	for _, d := range body.Data {
		for _, s := range d.Spans {
			s.Service = d.Processes[s.ProcessID].ServiceName
			spans = append(spans, s)
		}
	}
	return spans
}
