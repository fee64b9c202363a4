package config

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestPrecedenceFlagThenServiceEnvThenGlobalEnvThenDefault(t *testing.T) {
	env := map[string]string{
		"BOURSE_RISK_DATABASE_URL": "postgres://svc",
		"BOURSE_DATABASE_URL":      "postgres://global",
		"BOURSE_LOG_LEVEL":         "debug",
		"BOURSE_RISK_DRAIN":        "3s",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	fs := flag.NewFlagSet("risk", flag.ContinueOnError)
	db := fs.String("database-url", "", "")
	level := fs.String("log-level", "info", "")
	addr := fs.String("grpc-addr", "127.0.0.1:1", "")
	drain := fs.Duration("drain", time.Second, "")
	if err := fs.Parse([]string{"--log-level=warn"}); err != nil {
		t.Fatal(err)
	}
	if err := FromEnv(fs, "risk", lookup); err != nil {
		t.Fatal(err)
	}
	if *db != "postgres://svc" {
		t.Errorf("database-url = %q, want the service-specific variable", *db)
	}
	if *level != "warn" {
		t.Errorf("log-level = %q, want the command-line value", *level)
	}
	if *addr != "127.0.0.1:1" {
		t.Errorf("grpc-addr = %q, want the default", *addr)
	}
	if *drain != 3*time.Second {
		t.Errorf("drain = %v, want 3s", *drain)
	}
}

func TestBadEnvValueNamesVariable(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Duration("drain", time.Second, "")
	_ = fs.Parse(nil)
	err := FromEnv(fs, "x", func(k string) (string, bool) { return "soon", k == "BOURSE_X_DRAIN" })
	if err == nil || !strings.Contains(err.Error(), "BOURSE_X_DRAIN") {
		t.Fatalf("err = %v, want one naming BOURSE_X_DRAIN", err)
	}
}
