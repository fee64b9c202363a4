// Package grpcapi is the coordinator's gRPC layer: it validates requests (InvalidArgument naming
// the field), calls internal/coordinator, and converts its types; the server runtime maps the
// domain's error kinds to codes.
package grpcapi

import (
	"github.com/bourse-dev/bourse/pkg/auth"
	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
)

// WorkerIdentity is the service identity training workers call with.
const WorkerIdentity = "training-worker"

var (
	operators = auth.AdminOnly
	readers   = auth.AdminOnly.Or(auth.AnyService)
	workers   = auth.Services(WorkerIdentity)
)

// Policy classifies every method of the coordinator: operators start and stop jobs, services (the
// CLI's, dashboards) read them, and only workers take part in the rendezvous and checkpoints.
var Policy = auth.Policy{
	trainingv1.TrainingCoordinatorService_StartJob_FullMethodName:          operators,
	trainingv1.TrainingCoordinatorService_StopJob_FullMethodName:           operators,
	trainingv1.TrainingCoordinatorService_ResumeJob_FullMethodName:         operators,
	trainingv1.TrainingCoordinatorService_GetJob_FullMethodName:            readers,
	trainingv1.TrainingCoordinatorService_ListJobs_FullMethodName:          readers,
	trainingv1.TrainingCoordinatorService_StreamJobProgress_FullMethodName: readers,
	trainingv1.TrainingCoordinatorService_Join_FullMethodName:              workers,
	trainingv1.TrainingCoordinatorService_Heartbeat_FullMethodName:         workers,
	trainingv1.TrainingCoordinatorService_CommitStep_FullMethodName:        workers,
	trainingv1.TrainingCoordinatorService_UploadCheckpoint_FullMethodName:  workers,
	trainingv1.TrainingCoordinatorService_GetCheckpoint_FullMethodName:     workers,
	trainingv1.TrainingCoordinatorService_Leave_FullMethodName:             workers,
}

// WorkerPolicy is the workers' own server: only other workers exchange gradients and state.
var WorkerPolicy = auth.Policy{
	trainingv1.WorkerService_Exchange_FullMethodName: workers,
	trainingv1.WorkerService_GetState_FullMethodName: workers,
}
