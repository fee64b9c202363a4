package main

import (
	"context"
	"fmt"

	"github.com/bourse-dev/bourse/pkg/errs"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/checkpoint"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/coordinator"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/export"
)

// exporter writes a succeeded job's final checkpoint as ONNX into inference's model repository
// (a new version) and asks inference to load it.
type exporter struct {
	repo      string
	mnistDir  string
	inference pb.GRPCInferenceServiceClient
}

func (e *exporter) export(ctx context.Context, job coordinator.Record, sh coordinator.Shape, path string) (int64, error) {
	st, err := checkpoint.Read(path, job.ID, sh.NumParams)
	if err != nil {
		return 0, err
	}
	names, head := export.MNISTNames, export.Softmax
	if job.Spec.Dataset == dataset.Fraud {
		names, head = export.FraudNames, export.Sigmoid
	}
	doc := fmt.Sprintf("training job %s: %s on %s, step %d, held-out accuracy %.4f", job.ID, job.Spec.ModelKind, job.Spec.Dataset, st.Step, job.LastAccuracy)
	net, err := export.Network(sh.Model, st.Params, head, names, doc)
	if err != nil {
		return 0, err
	}
	if job.Spec.Dataset == dataset.Fraud {
		// The model was trained on standardized features; fold the standardization the workers
		// used (same load, same limit) into it, so it takes the raw vector payment sends.
		train, _, err := dataset.Load(job.Spec.Dataset, dataset.Options{
			Limit: coordinator.LoadLimit(job.Spec.TrainLimit, job.Spec.TestLimit), Seed: job.Spec.Seed, MNISTDir: e.mnistDir})
		if err != nil {
			return 0, err
		}
		if err := export.FoldStandardization(&net, train.Mean, train.Std); err != nil {
			return 0, err
		}
	}
	v, err := export.ToRepository(e.repo, job.Spec.ExportModel, net, export.Options{})
	if err != nil {
		return 0, err
	}
	if _, err := e.inference.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{ModelName: job.Spec.ExportModel}); err != nil {
		return v, errs.Wrap(errs.KindUnavailable, err, "version %d written; inference did not load it", v)
	}
	return v, nil
}
