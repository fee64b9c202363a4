package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/client"
	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

func TestRunServesMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if _, err := tlsconfig.WriteDevPKI(dir, "probe", "caller"); err != nil {
		t.Fatal(err)
	}
	f := tlsconfig.FilesIn(dir, "probe")
	ready := filepath.Join(t.TempDir(), "ready.json")
	envs := make(chan *Env, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- NewApp("probe", Defaults{GRPCAddr: "127.0.0.1:0"}).Run(ctx, []string{"--register=false", "--ready-file=" + ready, "--log-level=error",
			"--tls-cert=" + f.Cert, "--tls-key=" + f.Key, "--tls-ca=" + f.CA},
			func(_ context.Context, env *Env) (Service, error) {
				envs <- env
				return Service{Register: func(grpc.ServiceRegistrar) {}}, nil
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	addr := readyAddr(t, ready)
	env := <-envs
	if env.TLS == nil {
		t.Fatal("Env.TLS is nil with --tls-* set")
	}

	health := func(conn *grpc.ClientConn) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	// Env.Dial presents the service's own certificate and verifies the name asked for.
	self, err := env.Dial(addr, client.Options{ServerName: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if err := health(self); err != nil {
		t.Fatalf("mutual TLS call through Env.Dial: %v", err)
	}
	wrongName, err := env.Dial(addr, client.Options{ServerName: "risk"})
	if err != nil {
		t.Fatal(err)
	}
	defer wrongName.Close()
	if err := health(wrongName); status.Code(err) != codes.Unavailable {
		t.Fatalf("server certificate for probe accepted as risk: %v", err)
	}
	plain, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := health(plain); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext call to a mutual TLS server: %v", err)
	}
}

func TestRunRejectsPartialTLS(t *testing.T) {
	f := tlsconfig.FilesIn(t.TempDir(), "probe") // none of these exist
	for _, args := range [][]string{
		{"--register=false", "--tls-cert=" + f.Cert},
		{"--register=false", "--tls-cert=" + f.Cert, "--tls-key=" + f.Key, "--tls-ca=" + f.CA},
	} {
		err := NewApp("probe", Defaults{GRPCAddr: "127.0.0.1:0"}).Run(context.Background(), args, func(context.Context, *Env) (Service, error) {
			t.Fatal("build called despite bad TLS configuration")
			return Service{}, nil
		})
		if err == nil {
			t.Errorf("Run(%v) accepted bad TLS configuration", args)
		}
	}
}

func readyAddr(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil {
			var r struct {
				GRPCAddr string `json:"grpc_addr"`
			}
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			return r.GRPCAddr
		}
		if time.Now().After(deadline) {
			t.Fatal("app not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
