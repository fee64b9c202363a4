package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bourse-dev/bourse/pkg/errs"
	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/coordinator"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
)

// SpecFromProto converts a job spec; errors name the field.
func SpecFromProto(p *trainingv1.JobSpec) (coordinator.Spec, error) {
	if p == nil {
		return coordinator.Spec{}, errs.Invalid("spec", "required")
	}
	s := coordinator.Spec{
		Dataset: p.GetDataset(), TrainLimit: int(p.GetTrainLimit()), TestLimit: int(p.GetTestLimit()),
		Optimizer: p.GetOptimizer(), LearningRate: p.GetLearningRate(), Momentum: p.GetMomentum(),
		BatchSize: int(p.GetBatchSize()), Steps: int64(p.GetSteps()), Epochs: int(p.GetEpochs()), Seed: int64(p.GetSeed()),
		MinWorkers: int(p.GetMinWorkers()), MaxWorkers: int(p.GetMaxWorkers()),
		CheckpointEvery: int64(p.GetCheckpointInterval()), EvalEvery: int64(p.GetEvalInterval()),
		TargetAccuracy: float64(p.GetTargetAccuracy()),
		WaitTimeout:    time.Duration(p.GetWaitTimeoutMs()) * time.Millisecond,
		Heartbeat:      time.Duration(p.GetHeartbeatTimeoutMs()) * time.Millisecond,
		Collective:     time.Duration(p.GetCollectiveTimeoutMs()) * time.Millisecond,
		ExportModel:    p.GetExportModel(),
	}
	if p.GetSteps() > coordinator.MaxSteps {
		return s, errs.Invalid("spec.steps", "%d is more than %d", p.GetSteps(), coordinator.MaxSteps)
	}
	if p.GetSeed() > 1<<63-1 {
		return s, errs.Invalid("spec.seed", "%d does not fit a signed 64-bit seed", p.GetSeed())
	}
	switch p.GetModel().GetKind() {
	case trainingv1.ModelKind_MODEL_KIND_MLP:
		s.ModelKind = model.KindMLP
	case trainingv1.ModelKind_MODEL_KIND_LOGISTIC:
		s.ModelKind = model.KindLogReg
	case trainingv1.ModelKind_MODEL_KIND_UNSPECIFIED:
		return s, errs.Invalid("spec.model.kind", "required: MODEL_KIND_MLP or MODEL_KIND_LOGISTIC")
	default:
		return s, errs.Invalid("spec.model.kind", "unknown model kind %d", p.GetModel().GetKind())
	}
	if len(p.GetModel().GetHidden()) > model.MaxLayers {
		return s, errs.Invalid("spec.model.hidden", "%d layers, at most %d", len(p.GetModel().GetHidden()), model.MaxLayers)
	}
	for _, h := range p.GetModel().GetHidden() {
		s.Hidden = append(s.Hidden, int(min(h, model.MaxWidth+1)))
	}
	return s, nil
}

// SpecToProto is the inverse of SpecFromProto.
func SpecToProto(s coordinator.Spec) *trainingv1.JobSpec {
	p := &trainingv1.JobSpec{
		Dataset: s.Dataset, TrainLimit: uint32(s.TrainLimit), TestLimit: uint32(s.TestLimit),
		LearningRate: s.LearningRate, BatchSize: uint32(s.BatchSize), Steps: uint64(s.Steps), Epochs: uint32(s.Epochs),
		Seed: uint64(s.Seed), MinWorkers: uint32(s.MinWorkers), MaxWorkers: uint32(s.MaxWorkers),
		CheckpointInterval: uint64(s.CheckpointEvery), EvalInterval: uint64(s.EvalEvery), TargetAccuracy: float32(s.TargetAccuracy),
		WaitTimeoutMs: uint32(s.WaitTimeout.Milliseconds()), HeartbeatTimeoutMs: uint32(s.Heartbeat.Milliseconds()),
		CollectiveTimeoutMs: uint32(s.Collective.Milliseconds()), Optimizer: s.Optimizer, Momentum: s.Momentum,
		Model: &trainingv1.ModelSpec{}, ExportModel: s.ExportModel,
	}
	switch s.ModelKind {
	case model.KindMLP:
		p.Model.Kind = trainingv1.ModelKind_MODEL_KIND_MLP
	case model.KindLogReg:
		p.Model.Kind = trainingv1.ModelKind_MODEL_KIND_LOGISTIC
	}
	for _, h := range s.Hidden {
		p.Model.Hidden = append(p.Model.Hidden, uint32(h))
	}
	return p
}

// JobToProto converts a job.
func JobToProto(j coordinator.Job) *trainingv1.Job {
	out := &trainingv1.Job{
		JobId: j.ID, Spec: SpecToProto(j.Spec), Status: trainingv1.JobStatus(j.Status), Reason: j.Reason,
		Step: uint64(j.Step), TotalSteps: uint64(j.TotalSteps), Generation: j.Generation, Members: membersToProto(j.Members),
		LastLoss: j.LastLoss, LastAccuracy: float32(j.LastAccuracy), CheckpointStep: uint64(j.CheckpointStep),
		CheckpointPath: j.CheckpointPath, CreatedAt: timestamppb.New(j.Created), UpdatedAt: timestamppb.New(j.Updated),
		ExportedVersion: uint64(j.ExportedVersion), ExportError: j.ExportError,
	}
	if j.ExportedVersion > 0 {
		out.ExportedModel = j.Spec.ExportModel
	}
	return out
}

func membersToProto(ms []coordinator.Member) []*trainingv1.Member {
	out := make([]*trainingv1.Member, len(ms))
	for i, m := range ms {
		out[i] = &trainingv1.Member{WorkerId: m.WorkerID, Address: m.Address, Rank: uint32(m.Rank)}
	}
	return out
}

// EventToProto converts a progress event.
func EventToProto(e coordinator.Event) *trainingv1.StreamJobProgressResponse {
	out := &trainingv1.StreamJobProgressResponse{Seq: e.Seq, Time: timestamppb.New(e.Time)}
	switch {
	case e.Step != nil:
		out.Event = &trainingv1.StreamJobProgressResponse_Step{Step: &trainingv1.StepEvent{
			Step: uint64(e.Step.Step), Loss: e.Step.Loss, SamplesPerSecond: e.Step.SamplesPerSecond,
			AllreduceBytes: e.Step.AllreduceBytes, AllreduceOptimumBytes: e.Step.OptimumBytes, AllreduceSeconds: e.Step.AllreduceSeconds,
		}}
	case e.Eval != nil:
		out.Event = &trainingv1.StreamJobProgressResponse_Eval{Eval: &trainingv1.EvalEvent{Step: uint64(e.Eval.Step), Accuracy: float32(e.Eval.Accuracy)}}
	case e.Membership != nil:
		out.Event = &trainingv1.StreamJobProgressResponse_Membership{Membership: &trainingv1.MembershipEvent{
			Generation: e.Membership.Generation, Members: membersToProto(e.Membership.Members), Step: uint64(e.Membership.Step),
		}}
	case e.Status != nil:
		out.Event = &trainingv1.StreamJobProgressResponse_Status{Status: &trainingv1.StatusEvent{
			Status: trainingv1.JobStatus(e.Status.Status), Reason: e.Status.Reason, ModelPath: e.Status.ModelPath,
			ExportedModel: e.Status.ExportedModel, ExportedVersion: uint64(e.Status.ExportedVersion), ExportError: e.Status.ExportError,
		}}
	}
	return out
}
