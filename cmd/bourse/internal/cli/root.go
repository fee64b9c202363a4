// Package cli is the bourse command line: one cobra command per verb, all calling the services
// through pkg/client with the generated gRPC clients.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// globals are the flags every command shares.
type globals struct {
	consul  string
	addrs   []string // service=host:port overrides
	apiKey  string
	output  string
	timeout time.Duration
	jaeger  string
	trace   bool

	endTrace func() // set when the command is traced
	out      io.Writer
	errOut   io.Writer

	conns *conns
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	g := &globals{out: stdout, errOut: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Ctrl-C ends a watch or a stream as a clean exit; a second one kills the process as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if g.conns != nil {
		g.conns.close()
	}
	if g.endTrace != nil {
		g.endTrace()
	}
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// cobra's own errors: an unknown command or flag, a missing argument.
		ee = &exitError{code: ExitUsage, msg: err.Error()}
		fmt.Fprintf(stderr, "bourse: %s\nRun 'bourse --help' for usage.\n", ee.msg)
		return ee.code
	}
	fmt.Fprintf(stderr, "bourse: %s\n", ee.msg)
	return ee.code
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "bourse",
		Short: "Drive the bourse platform: trade, pay, serve and train models, watch it run",
		Long: `bourse calls the platform's services with their generated gRPC clients. It finds them
through Consul (--consul, default the make run agent) or takes addresses (--addr matching=host:port),
and authenticates with BOURSE_API_KEY or --api-key.

Exit codes: 0 ok, 1 the call failed, 2 bad usage or a field the server refused, 3 service
unreachable, 4 API key missing or not allowed, 5 not found.`,
		Example: `  export BOURSE_API_KEY=$(cat .run/keys/alice.key)
  bourse status
  bourse order buy BTC-USD 0.1 --price 50000 --account alice
  bourse book BTC-USD --watch
  bourse account alice -o json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch g.output {
			case "table", "json", "yaml":
			default:
				return usageError("--output %q: want table, json or yaml", g.output)
			}
			if err := g.startTracing(cmd); err != nil {
				return err
			}
			conns, err := newConns(g)
			if err != nil {
				return err
			}
			g.conns = conns
			return nil
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, msg: fmt.Sprintf("%v\nRun '%s --help' for usage.", err, cmd.CommandPath())}
	})
	f := root.PersistentFlags()
	f.StringVar(&g.consul, "consul", envOr("BOURSE_CONSUL_ADDR", "127.0.0.1:8500"), "Consul agent that knows where the services are")
	f.StringSliceVar(&g.addrs, "addr", nil, "call a service at an address instead of through Consul: name=host:port (repeatable)")
	f.StringVar(&g.apiKey, "api-key", os.Getenv("BOURSE_API_KEY"), "API key (default $BOURSE_API_KEY)")
	f.StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
	f.DurationVar(&g.timeout, "timeout", 10*time.Second, "deadline of each call")
	f.BoolVar(&g.trace, "trace", false, "trace the command (to make run's Jaeger unless OTEL_EXPORTER_OTLP_ENDPOINT is set) and print its trace id")
	f.StringVar(&g.jaeger, "jaeger", envOr("BOURSE_JAEGER_URL", "http://127.0.0.1:16686"), "Jaeger query API, for trace and traces")
	root.SuggestionsMinimumDistance = 2

	root.AddCommand(
		newStatusCmd(g),
		newSymbolsCmd(g),
		newOrderCmd(g),
		newBookCmd(g),
		newTradesCmd(g),
		newAccountCmd(g),
		newAccountsCmd(g),
		newDepositCmd(g),
		newWithdrawCmd(g),
		newPaymentsCmd(g),
		newWebhooksCmd(g),
		newModelsCmd(g),
		newInferCmd(g),
		newLimitsCmd(g),
		newTradingStateCmd(g, "halt"),
		newTradingStateCmd(g, "resume"),
		newTrainCmd(g),
		newBenchCmd(g),
		newTraceCmd(g),
		newTracesCmd(g),
	)
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// callCtx bounds one call by --timeout.
func (g *globals) callCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), g.timeout)
}

// addrOverride returns the --addr given for service, if any.
func (g *globals) addrOverride(service string) (string, bool, error) {
	for _, a := range g.addrs {
		name, addr, ok := strings.Cut(a, "=")
		if !ok || name == "" || addr == "" {
			return "", false, usageError("--addr %q: want name=host:port", a)
		}
		if name == service {
			return addr, true, nil
		}
	}
	return "", false, nil
}

// group makes a command that only holds subcommands refuse anything else, with a suggestion, as
// the root does (cobra would print the help and exit 0).
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		var names []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				names = append(names, c.Name())
			}
		}
		return usageError("%s\nAvailable: %s. Run '%s --help' for usage.", msg, strings.Join(names, ", "), cmd.CommandPath())
	}
	return cmd
}
