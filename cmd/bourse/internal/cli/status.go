package cli

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"
)

// platformServices are the services bourse itself runs; status lists them even when none is up.
var platformServices = []string{"discovery", "risk", "matching", "inference", "payment", "acquirer", "training-coordinator", "training-worker"}

// coreServices must each have a passing instance for status to exit 0 (workers come and go).
var coreServices = platformServices[:7]

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Every service at a glance: instances, health, version, address",
		Example: `  bourse status
  bourse status -o json | jq '.services[] | select(.passing == 0)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			q := (&api.QueryOptions{}).WithContext(ctx)
			names, _, err := g.conns.consul.Catalog().Services(q)
			if err != nil {
				return &exitError{ExitUnreachable, fmt.Sprintf("Consul at %s is unreachable: %v (is make run up? --consul)", g.consul, err)}
			}
			all := slices.Clone(platformServices)
			for n := range names {
				if n != "consul" && !slices.Contains(all, n) {
					all = append(all, n)
				}
			}
			type inst struct{ id, health, version, addr string }
			rows := map[string][]inst{}
			down := 0
			for _, name := range all {
				entries, _, err := g.conns.consul.Health().Service(name, "", false, q)
				if err != nil {
					return &exitError{ExitUnreachable, fmt.Sprintf("Consul at %s: %v", g.consul, err)}
				}
				for _, e := range entries {
					addr := e.Service.Address
					if addr == "" {
						addr = e.Node.Address
					}
					rows[name] = append(rows[name], inst{e.Service.ID, e.Checks.AggregatedStatus(),
						e.Service.Meta["version"], fmt.Sprintf("%s:%d", addr, e.Service.Port)})
				}
				if !slices.ContainsFunc(rows[name], func(i inst) bool { return i.health == api.HealthPassing }) &&
					slices.Contains(coreServices, name) {
					down++
				}
			}
			out := map[string]any{}
			var list []any
			for _, name := range all {
				passing := 0
				var insts []any
				for _, i := range rows[name] {
					if i.health == api.HealthPassing {
						passing++
					}
					insts = append(insts, map[string]any{"id": i.id, "health": i.health, "version": i.version, "address": i.addr})
				}
				list = append(list, map[string]any{"name": name, "instances": insts, "passing": passing})
			}
			out["services"] = list
			msg, err := structpb.NewStruct(out)
			if err != nil {
				return err
			}
			err = g.print(msg, func(t *tabwriter.Writer) {
				row(t, "SERVICE", "INSTANCE", "HEALTH", "VERSION", "ADDRESS")
				for _, name := range all {
					if len(rows[name]) == 0 {
						row(t, name, "", "not running", "", "")
						continue
					}
					for _, i := range rows[name] {
						row(t, name, i.id, i.health, i.version, i.addr)
					}
				}
			})
			if err != nil {
				return err
			}
			if down > 0 {
				return &exitError{ExitUnreachable, fmt.Sprintf("%d of the core services (%s) have no passing instance", down, strings.Join(coreServices, ", "))}
			}
			return nil
		},
	}
}
