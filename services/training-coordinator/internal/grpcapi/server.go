package grpcapi

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/errs"
	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce/grpcring"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/coordinator"
)

// Server implements TrainingCoordinatorService over a Coordinator.
type Server struct {
	trainingv1.UnimplementedTrainingCoordinatorServiceServer
	c *coordinator.Coordinator
	// draining ends progress streams when the service shuts down.
	draining <-chan struct{}
}

// New returns the gRPC face of c.
func New(c *coordinator.Coordinator, draining <-chan struct{}) *Server {
	return &Server{c: c, draining: draining}
}

func (s *Server) StartJob(_ context.Context, req *trainingv1.StartJobRequest) (*trainingv1.StartJobResponse, error) {
	if req.GetJobId() != "" {
		if err := coordinator.ValidJobID(req.GetJobId()); err != nil {
			return nil, err
		}
	}
	spec, err := SpecFromProto(req.GetSpec())
	if err != nil {
		return nil, err
	}
	j, dup, err := s.c.StartJob(req.GetJobId(), spec)
	if err != nil {
		return nil, err
	}
	return &trainingv1.StartJobResponse{Job: JobToProto(j), Duplicate: dup}, nil
}

func (s *Server) GetJob(_ context.Context, req *trainingv1.GetJobRequest) (*trainingv1.GetJobResponse, error) {
	if req.GetJobId() == "" {
		return nil, errs.Invalid("job_id", "required")
	}
	j, err := s.c.GetJob(req.GetJobId())
	if err != nil {
		return nil, err
	}
	return &trainingv1.GetJobResponse{Job: JobToProto(j)}, nil
}

func (s *Server) ListJobs(_ context.Context, req *trainingv1.ListJobsRequest) (*trainingv1.ListJobsResponse, error) {
	limit := int(req.GetLimit())
	if limit == 0 || limit > 100 {
		limit = 100
	}
	out := &trainingv1.ListJobsResponse{}
	for _, j := range s.c.ListJobs(limit) {
		out.Jobs = append(out.Jobs, JobToProto(j))
	}
	return out, nil
}

func (s *Server) StopJob(_ context.Context, req *trainingv1.StopJobRequest) (*trainingv1.StopJobResponse, error) {
	if req.GetJobId() == "" {
		return nil, errs.Invalid("job_id", "required")
	}
	j, err := s.c.StopJob(req.GetJobId())
	if err != nil {
		return nil, err
	}
	return &trainingv1.StopJobResponse{Job: JobToProto(j)}, nil
}

func (s *Server) ResumeJob(_ context.Context, req *trainingv1.ResumeJobRequest) (*trainingv1.ResumeJobResponse, error) {
	if req.GetJobId() == "" {
		return nil, errs.Invalid("job_id", "required")
	}
	j, err := s.c.ResumeJob(req.GetJobId())
	if err != nil {
		return nil, err
	}
	return &trainingv1.ResumeJobResponse{Job: JobToProto(j)}, nil
}

func (s *Server) StreamJobProgress(req *trainingv1.StreamJobProgressRequest, stream grpc.ServerStreamingServer[trainingv1.StreamJobProgressResponse]) error {
	if req.GetJobId() == "" {
		return errs.Invalid("job_id", "required")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-s.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := s.c.Watch(ctx, req.GetJobId(), 0, func(e coordinator.Event) error { return stream.Send(EventToProto(e)) })
	if err != nil && ctx.Err() != nil && stream.Context().Err() == nil {
		return errs.New(errs.KindUnavailable, "coordinator shutting down")
	}
	return err
}

func (s *Server) Join(ctx context.Context, req *trainingv1.JoinRequest) (*trainingv1.JoinResponse, error) {
	if req.GetJobId() != "" {
		if err := coordinator.ValidJobID(req.GetJobId()); err != nil {
			return nil, err
		}
	}
	a, ok, err := s.c.Join(ctx, coordinator.JoinRequest{
		JobID: req.GetJobId(), WorkerID: req.GetWorkerId(), Address: req.GetAddress(),
		StateJob: req.GetStateJobId(), StateStep: int64(min(req.GetStateStep(), coordinator.MaxSteps)),
		Wait: time.Duration(req.GetWaitTimeMs()) * time.Millisecond,
	})
	if err != nil || !ok {
		return &trainingv1.JoinResponse{}, err
	}
	return &trainingv1.JoinResponse{
		Assigned: true, Job: JobToProto(a.Job), Generation: a.Generation, Rank: uint32(a.Rank), WorldSize: uint32(a.World),
		Members: membersToProto(a.Members), StartStep: uint64(a.StartStep), Source: trainingv1.StateSource(a.Source),
		HeartbeatIntervalMs: uint32(a.HeartbeatInterval.Milliseconds()),
	}, nil
}

func (s *Server) Heartbeat(_ context.Context, req *trainingv1.HeartbeatRequest) (*trainingv1.HeartbeatResponse, error) {
	rejoin, err := s.c.Heartbeat(req.GetWorkerId(), req.GetJobId(), req.GetGeneration())
	if err != nil {
		return nil, err
	}
	return &trainingv1.HeartbeatResponse{Rejoin: rejoin}, nil
}

func (s *Server) CommitStep(ctx context.Context, req *trainingv1.CommitStepRequest) (*trainingv1.CommitStepResponse, error) {
	switch {
	case req.GetJobId() == "":
		return nil, errs.Invalid("job_id", "required")
	case req.GetWorkerId() == "":
		return nil, errs.Invalid("worker_id", "required")
	case req.GetStep() > coordinator.MaxSteps:
		return nil, errs.Invalid("step", "%d is more than %d", req.GetStep(), coordinator.MaxSteps)
	case req.GetAccuracy() < 0 || req.GetAccuracy() > 1:
		return nil, errs.Invalid("accuracy", "%v is outside [0, 1]", req.GetAccuracy())
	}
	act, err := s.c.CommitStep(ctx, coordinator.CommitRequest{
		JobID: req.GetJobId(), WorkerID: req.GetWorkerId(), Generation: req.GetGeneration(), Rank: int(req.GetRank()),
		Step: int64(req.GetStep()), Loss: req.GetLoss(), Evaluated: req.GetEvaluated(), Accuracy: float64(req.GetAccuracy()),
		AllreduceBytes: req.GetAllreduceBytes(), AllreduceSeconds: req.GetAllreduceSeconds(), StepSeconds: req.GetStepSeconds(),
	})
	if err != nil {
		return nil, err
	}
	return &trainingv1.CommitStepResponse{Action: trainingv1.StepAction(act)}, nil
}

func (s *Server) UploadCheckpoint(_ context.Context, req *trainingv1.UploadCheckpointRequest) (*trainingv1.UploadCheckpointResponse, error) {
	if req.GetJobId() == "" {
		return nil, errs.Invalid("job_id", "required")
	}
	if req.GetStep() > coordinator.MaxSteps {
		return nil, errs.Invalid("step", "%d is more than %d", req.GetStep(), coordinator.MaxSteps)
	}
	params, err := grpcring.DecodeFloats(req.GetParams())
	if err != nil {
		return nil, errs.Invalid("params", "%v", err)
	}
	opt, err := grpcring.DecodeFloats(req.GetOptimizerState())
	if err != nil {
		return nil, errs.Invalid("optimizer_state", "%v", err)
	}
	path, err := s.c.UploadCheckpoint(req.GetJobId(), req.GetGeneration(), int64(req.GetStep()), params, opt)
	if err != nil {
		return nil, err
	}
	return &trainingv1.UploadCheckpointResponse{Path: path}, nil
}

func (s *Server) GetCheckpoint(_ context.Context, req *trainingv1.GetCheckpointRequest) (*trainingv1.GetCheckpointResponse, error) {
	if req.GetJobId() == "" {
		return nil, errs.Invalid("job_id", "required")
	}
	st, err := s.c.GetCheckpoint(req.GetJobId())
	if err != nil {
		return nil, err
	}
	return &trainingv1.GetCheckpointResponse{Step: st.Step, Params: grpcring.EncodeFloats(nil, st.Params),
		OptimizerState: grpcring.EncodeFloats(nil, st.Optimizer)}, nil
}

func (s *Server) Leave(_ context.Context, req *trainingv1.LeaveRequest) (*trainingv1.LeaveResponse, error) {
	if req.GetWorkerId() == "" {
		return nil, errs.Invalid("worker_id", "required")
	}
	s.c.Leave(req.GetWorkerId())
	return &trainingv1.LeaveResponse{}, nil
}
