package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	inferencev1 "github.com/bourse-dev/bourse/pkg/gen/inference"
)

func newModelsCmd(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{Use: "models", Short: "The inference model repository: list, load, unload"})
	list := &cobra.Command{
		Use:     "list",
		Short:   "Every model version in the repository and its state (admin or training key)",
		Example: "  bourse models list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "inference", func(cc *grpc.ClientConn) (*inferencev1.RepositoryIndexResponse, error) {
				return inferencev1.NewGRPCInferenceServiceClient(cc).RepositoryIndex(ctx, &inferencev1.RepositoryIndexRequest{})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) {
				row(t, "MODEL", "VERSION", "STATE", "REASON")
				for _, m := range resp.GetModels() {
					row(t, m.GetName(), m.GetVersion(), m.GetState(), m.GetReason())
				}
			})
		},
	}
	repoCall := func(load bool) *cobra.Command {
		verb := map[bool]string{true: "load", false: "unload"}[load]
		return &cobra.Command{
			Use:     verb + " MODEL",
			Short:   strings.ToUpper(verb[:1]) + verb[1:] + " a model (inference started with --model-control=explicit)",
			Example: "  bourse models " + verb + " fraud",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx, cancel := g.callCtx(cmd)
				defer cancel()
				_, err := call(g, "inference", func(cc *grpc.ClientConn) (any, error) {
					c := inferencev1.NewGRPCInferenceServiceClient(cc)
					if load {
						return c.RepositoryModelLoad(ctx, &inferencev1.RepositoryModelLoadRequest{ModelName: args[0]})
					}
					return c.RepositoryModelUnload(ctx, &inferencev1.RepositoryModelUnloadRequest{ModelName: args[0]})
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(g.out, "%sed %s\n", verb, args[0])
				return nil
			},
		}
	}
	cmd.AddCommand(list, repoCall(true), repoCall(false))
	return cmd
}

func newInferCmd(g *globals) *cobra.Command {
	var inputs []string
	var version string
	cmd := &cobra.Command{
		Use:   "infer MODEL --input [NAME=]JSON",
		Short: "Run a model on inputs written as JSON arrays (the shape is the nesting)",
		Example: `  bourse infer iris --input '[[5.9,3.0,5.1,1.8],[5.5,2.5,4.0,1.3]]'
  bourse infer iris --input 'X=[[5.9,3.0,5.1,1.8]]' -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(inputs) == 0 {
				return usageError("give at least one --input")
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			meta, err := call(g, "inference", func(cc *grpc.ClientConn) (*inferencev1.ModelMetadataResponse, error) {
				return inferencev1.NewGRPCInferenceServiceClient(cc).ModelMetadata(ctx, &inferencev1.ModelMetadataRequest{Name: args[0], Version: version})
			})
			if err != nil {
				return err
			}
			req := &inferencev1.ModelInferRequest{ModelName: args[0], ModelVersion: version}
			for i, in := range inputs {
				name, body, named := strings.Cut(in, "=")
				if !named || strings.HasPrefix(strings.TrimSpace(in), "[") {
					name, body = "", in
				}
				var tm *inferencev1.ModelMetadataResponse_TensorMetadata
				switch {
				case name == "" && len(meta.GetInputs()) > i:
					tm = meta.GetInputs()[i]
				default:
					for _, m := range meta.GetInputs() {
						if m.GetName() == name {
							tm = m
						}
					}
				}
				if tm == nil {
					return usageError("--input %q: model %s has no such input (it has %s)", in, args[0], inputNames(meta))
				}
				tensor, err := tensorFromJSON(tm.GetName(), tm.GetDatatype(), body)
				if err != nil {
					return usageError("--input %s: %v", tm.GetName(), err)
				}
				req.Inputs = append(req.Inputs, tensor)
			}
			resp, err := call(g, "inference", func(cc *grpc.ClientConn) (*inferencev1.ModelInferResponse, error) {
				return inferencev1.NewGRPCInferenceServiceClient(cc).ModelInfer(ctx, req)
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) {
				row(t, "OUTPUT", "DATATYPE", "SHAPE", "VALUES")
				for _, o := range resp.GetOutputs() {
					row(t, o.GetName(), o.GetDatatype(), fmt.Sprint(o.GetShape()), tensorValues(o.GetContents()))
				}
			})
		},
	}
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "an input tensor as a JSON array, optionally NAME=; in the model's input order when unnamed")
	cmd.Flags().StringVar(&version, "model-version", "", "a version (default: the latest loaded)")
	return cmd
}

func inputNames(m *inferencev1.ModelMetadataResponse) string {
	var names []string
	for _, in := range m.GetInputs() {
		names = append(names, in.GetName())
	}
	return strings.Join(names, ", ")
}

// tensorFromJSON reads a nested JSON array into a tensor of the given datatype: its shape is the
// nesting, and every row must have the same length.
func tensorFromJSON(name, datatype, body string) (*inferencev1.ModelInferRequest_InferInputTensor, error) {
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	var shape []int64
	var flat []float64
	var walk func(v any, dim int) error
	walk = func(v any, dim int) error {
		switch x := v.(type) {
		case float64:
			if dim != len(shape) {
				return fmt.Errorf("ragged array: a number where an array was expected")
			}
			flat = append(flat, x)
			return nil
		case []any:
			if dim == len(shape) {
				if len(flat) > 0 {
					return fmt.Errorf("ragged array: an array where a number was expected")
				}
				shape = append(shape, int64(len(x)))
			} else if shape[dim] != int64(len(x)) {
				return fmt.Errorf("ragged array: rows of %d and %d values", shape[dim], len(x))
			}
			for _, e := range x {
				if err := walk(e, dim+1); err != nil {
					return err
				}
			}
			return nil
		default:
			return fmt.Errorf("only numbers and arrays of them")
		}
	}
	if err := walk(v, 0); err != nil {
		return nil, err
	}
	t := &inferencev1.ModelInferRequest_InferInputTensor{Name: name, Datatype: datatype, Shape: shape, Contents: &inferencev1.InferTensorContents{}}
	// An integer input takes integers its type holds: converting 1.5 or 3e9 would send another number.
	if bits, ok := map[string]int{"INT8": 8, "INT16": 16, "INT32": 32, "INT64": 64}[datatype]; ok {
		lo, hi := -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)
		for _, f := range flat {
			if f != math.Trunc(f) || f < lo || f >= hi {
				return nil, fmt.Errorf("%v is not a %s", f, datatype)
			}
		}
	}
	for _, f := range flat {
		switch datatype {
		case "FP32":
			t.Contents.Fp32Contents = append(t.Contents.Fp32Contents, float32(f))
		case "FP64":
			t.Contents.Fp64Contents = append(t.Contents.Fp64Contents, f)
		case "INT32", "INT16", "INT8":
			t.Contents.IntContents = append(t.Contents.IntContents, int32(f))
		case "INT64":
			t.Contents.Int64Contents = append(t.Contents.Int64Contents, int64(f))
		default:
			return nil, fmt.Errorf("datatype %s is not supported here; use grpcurl", datatype)
		}
	}
	return t, nil
}

func tensorValues(c *inferencev1.InferTensorContents) string {
	var vals []string
	for _, v := range c.GetFp32Contents() {
		vals = append(vals, fmt.Sprint(v))
	}
	for _, v := range c.GetFp64Contents() {
		vals = append(vals, fmt.Sprint(v))
	}
	for _, v := range c.GetInt64Contents() {
		vals = append(vals, fmt.Sprint(v))
	}
	for _, v := range c.GetIntContents() {
		vals = append(vals, fmt.Sprint(v))
	}
	if len(vals) > 16 {
		vals = append(vals[:16], fmt.Sprintf("… (%d values)", len(vals)))
	}
	return strings.Join(vals, " ")
}
