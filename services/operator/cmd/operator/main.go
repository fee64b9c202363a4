// Command operator runs the Application controller: each apps.bourse.dev/v1alpha1 Application
// becomes a Deployment, a Service and, when Istio is installed, a VirtualService.
package main

import (
	"flag"
	"log/slog"
	"os"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	appsv1alpha1 "github.com/bourse-dev/bourse/services/operator/api/v1alpha1"
	"github.com/bourse-dev/bourse/services/operator/internal/controller"
)

func main() {
	metricsAddr := flag.String("metrics-addr", ":8080", "Prometheus /metrics listen address")
	probeAddr := flag.String("health-addr", ":8081", "/healthz and /readyz listen address")
	leaderElect := flag.Bool("leader-elect", false, "elect one active replica through a Lease")
	leaseNamespace := flag.String("leader-elect-namespace", "", "namespace of the Lease (default: the pod's own namespace)")
	logFormat := flag.String("log-format", "json", "text or json")
	flag.Parse()

	var handler slog.Handler = slog.NewJSONHandler(os.Stderr, nil)
	if *logFormat == "text" {
		handler = slog.NewTextHandler(os.Stderr, nil)
	}
	logger := slog.New(handler)
	ctrl.SetLogger(logr.FromSlogHandler(handler))

	scheme := runtime.NewScheme()
	must(logger, clientgoscheme.AddToScheme(scheme), "register client-go types")
	must(logger, appsv1alpha1.AddToScheme(scheme), "register Application")

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "operator.apps.bourse.dev",
		LeaderElectionNamespace: *leaseNamespace,
		// Hand the lease over at once on SIGTERM instead of making the standby wait it out.
		LeaderElectionReleaseOnCancel: true,
	})
	must(logger, err, "create manager")
	r := &controller.Reconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder(controller.FieldOwner),
		Logger:   logger,
	}
	must(logger, r.SetupWithManager(mgr), "set up controller")
	must(logger, mgr.AddHealthzCheck("healthz", healthz.Ping), "add healthz")
	must(logger, mgr.AddReadyzCheck("readyz", healthz.Ping), "add readyz")

	logger.Info("starting operator", "metrics", *metricsAddr, "health", *probeAddr, "leader_elect", *leaderElect)
	// SetupSignalHandler cancels on SIGTERM, so in-flight reconciles finish and the lease is released.
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		logger.Error("manager stopped", "err", err)
		os.Exit(1)
	}
}

func must(logger *slog.Logger, err error, what string) {
	if err != nil {
		logger.Error(what, "err", err)
		os.Exit(1)
	}
}
