// Command fraudmodel writes the `fraud` model into an inference model repository: a logistic
// regression over pkg/fraud's features, fitted on pkg/fraud's synthetic dataset (see
// pkg/fraud/README.md). The same flags write the same bytes.
//
//	fraudmodel -out .run/models/fraud
//
// writes .run/models/fraud/config.json and .run/models/fraud/1/model.onnx.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/bourse-dev/bourse/pkg/fraud"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "fraudmodel: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fraudmodel", flag.ContinueOnError)
	dir := fs.String("out", "", "the model's directory in the inference repository (e.g. .run/models/fraud)")
	spec := fraud.DefaultSpec
	fs.Uint64Var(&spec.Seed, "seed", spec.Seed, "seed of the synthetic dataset")
	fs.IntVar(&spec.Samples, "samples", spec.Samples, "payments in the synthetic dataset")
	fs.IntVar(&spec.Fit.Epochs, "epochs", spec.Fit.Epochs, "gradient descent epochs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("-out is required and nothing else is taken")
	}
	m, err := fraud.WriteRepository(*dir, spec)
	if err != nil {
		return err
	}
	// A held-out dataset from the next seed says how well the model separates fraud.
	held, err := fraud.Generate(spec.Seed+1, min(spec.Samples, 20_000))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "fraudmodel: wrote %s (seed %d, %d samples, %d epochs): held-out log loss %.4f, AUC %.4f\n",
		*dir, spec.Seed, spec.Samples, spec.Fit.Epochs, m.LogLoss(held), m.AUC(held))
	return nil
}
