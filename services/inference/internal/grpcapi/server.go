// Package grpcapi serves the KServe v2 protocol (package inference) over the model repository. It
// validates and decodes requests, calls the repository, and encodes answers; domain errors become
// gRPC codes in the runtime.
package grpcapi

import (
	"context"
	"errors"
	"io"
	"runtime/debug"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/services/inference/internal/repository"
)

// Policy: health is public like the gRPC health service; inference is open to any known caller, and
// each model's access rule (config.pbtxt) narrows who may use that model; the repository is managed
// by the training coordinator and operators. Every method is listed: a missing one is refused to
// everyone.
var Policy = auth.Policy{
	pb.GRPCInferenceService_ServerLive_FullMethodName:  auth.Public,
	pb.GRPCInferenceService_ServerReady_FullMethodName: auth.Public,

	pb.GRPCInferenceService_ServerMetadata_FullMethodName:   auth.Authenticated,
	pb.GRPCInferenceService_ModelReady_FullMethodName:       auth.Authenticated,
	pb.GRPCInferenceService_ModelMetadata_FullMethodName:    auth.Authenticated,
	pb.GRPCInferenceService_ModelInfer_FullMethodName:       auth.Authenticated,
	pb.GRPCInferenceService_ModelStreamInfer_FullMethodName: auth.Authenticated,

	pb.GRPCInferenceService_RepositoryIndex_FullMethodName:       fromTraining,
	pb.GRPCInferenceService_RepositoryModelLoad_FullMethodName:   fromTraining,
	pb.GRPCInferenceService_RepositoryModelUnload_FullMethodName: fromTraining,
}

var fromTraining = auth.Services("training")

// Extensions of the protocol this server implements, reported by ServerMetadata.
var Extensions = []string{"model_repository"}

// Server implements pb.GRPCInferenceServiceServer.
type Server struct {
	pb.UnimplementedGRPCInferenceServiceServer
	repo models
}

// models is what the server asks of the model repository (a *repository.Manager). Each model call
// carries its caller, whose access the repository checks in the lookup the call uses.
type models interface {
	Ready() bool
	Explicit() bool
	ModelReady(caller repository.Caller, name, ver string) (bool, error)
	Metadata(caller repository.Caller, name, ver string) (repository.Metadata, error)
	Infer(ctx context.Context, req repository.Request) (repository.Response, error)
	Index(readyOnly bool) ([]repository.IndexEntry, error)
	Load(ctx context.Context, name string) error
	Unload(ctx context.Context, name string) error
}

// New serves repo.
func New(repo *repository.Manager) *Server { return &Server{repo: repo} }

// ServerLive implements the RPC.
func (s *Server) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

// ServerReady implements the RPC.
func (s *Server) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: s.repo.Ready()}, nil
}

// ModelReady implements the RPC.
func (s *Server) ModelReady(ctx context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	if err := checkModelRef("name", req.GetName(), "version", req.GetVersion()); err != nil {
		return nil, err
	}
	who, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	ready, err := s.repo.ModelReady(who, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelReadyResponse{Ready: ready}, nil
}

// ServerMetadata implements the RPC.
func (s *Server) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: "bourse-inference", Version: buildVersion(), Extensions: Extensions}, nil
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// ModelMetadata implements the RPC.
func (s *Server) ModelMetadata(ctx context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	if err := checkModelRef("name", req.GetName(), "version", req.GetVersion()); err != nil {
		return nil, err
	}
	who, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	md, err := s.repo.Metadata(who, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	resp := &pb.ModelMetadataResponse{Name: md.Name, Versions: md.Versions, Platform: md.Platform}
	for _, t := range md.Inputs {
		resp.Inputs = append(resp.Inputs, &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	for _, t := range md.Outputs {
		resp.Outputs = append(resp.Outputs, &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	return resp, nil
}

// ModelInfer implements the RPC.
func (s *Server) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	r, raw, err := decodeInfer(req)
	if err != nil {
		return nil, err
	}
	if r.Caller, err = caller(ctx); err != nil {
		return nil, err
	}
	resp, err := s.repo.Infer(ctx, r)
	if err != nil {
		return nil, err
	}
	return encodeInfer(req.GetId(), resp, raw), nil
}

// streamWindow bounds the requests of one stream that run at once. Running them concurrently lets
// one client's pipelined requests share batches; answers still go out in request order.
const streamWindow = 64

// ModelStreamInfer implements the RPC: each request gets one response, in order; a failed request
// answers with error_message and the stream goes on.
func (s *Server) ModelStreamInfer(stream pb.GRPCInferenceService_ModelStreamInferServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	pending := make(chan chan *pb.ModelStreamInferResponse, streamWindow)
	recvErr := make(chan error, 1)
	go func() {
		defer close(pending)
		for {
			req, err := stream.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					recvErr <- err
				}
				return
			}
			answer := make(chan *pb.ModelStreamInferResponse, 1)
			select {
			case pending <- answer:
			case <-ctx.Done():
				return
			}
			go func() { answer <- s.streamOne(ctx, req) }()
		}
	}()
	for answer := range pending {
		if err := stream.Send(<-answer); err != nil {
			return err
		}
	}
	select {
	case err := <-recvErr:
		return err
	default:
		return nil
	}
}

func (s *Server) streamOne(ctx context.Context, req *pb.ModelInferRequest) *pb.ModelStreamInferResponse {
	resp, err := s.ModelInfer(ctx, req)
	if err != nil {
		return &pb.ModelStreamInferResponse{ErrorMessage: streamError(err),
			InferResponse: &pb.ModelInferResponse{ModelName: req.GetModelName(), ModelVersion: req.GetModelVersion(), Id: req.GetId()}}
	}
	return &pb.ModelStreamInferResponse{InferResponse: resp}
}

// streamError is the text of a failed stream request; internal details stay in the server.
func streamError(err error) string {
	if e, ok := errors.AsType[*errs.Error](err); ok && e.Kind != errs.KindInternal {
		return e.Error()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err.Error()
	}
	return "internal error"
}

// RepositoryIndex implements the RPC.
func (s *Server) RepositoryIndex(_ context.Context, req *pb.RepositoryIndexRequest) (*pb.RepositoryIndexResponse, error) {
	if err := checkRepository(req.GetRepositoryName()); err != nil {
		return nil, err
	}
	entries, err := s.repo.Index(req.GetReady())
	if err != nil {
		return nil, err
	}
	resp := &pb.RepositoryIndexResponse{}
	for _, e := range entries {
		resp.Models = append(resp.Models, &pb.RepositoryIndexResponse_ModelIndex{Name: e.Name, Version: e.Version, State: string(e.State), Reason: e.Reason})
	}
	return resp, nil
}

// RepositoryModelLoad implements the RPC.
// In polling mode it loads the model from the directory now instead of at the next scan (what a
// publisher that just renamed a version into place wants); the scan would do the same.
func (s *Server) RepositoryModelLoad(ctx context.Context, req *pb.RepositoryModelLoadRequest) (*pb.RepositoryModelLoadResponse, error) {
	if err := s.checkRepositoryChange(req.GetRepositoryName(), req.GetModelName(), true); err != nil {
		return nil, err
	}
	if err := s.repo.Load(ctx, req.GetModelName()); err != nil {
		return nil, err
	}
	return &pb.RepositoryModelLoadResponse{}, nil
}

// RepositoryModelUnload implements the RPC.
func (s *Server) RepositoryModelUnload(ctx context.Context, req *pb.RepositoryModelUnloadRequest) (*pb.RepositoryModelUnloadResponse, error) {
	if err := s.checkRepositoryChange(req.GetRepositoryName(), req.GetModelName(), false); err != nil {
		return nil, err
	}
	if err := s.repo.Unload(ctx, req.GetModelName()); err != nil {
		return nil, err
	}
	return &pb.RepositoryModelUnloadResponse{}, nil
}

func (s *Server) checkRepositoryChange(repo, model string, load bool) error {
	if err := checkRepository(repo); err != nil {
		return err
	}
	if err := checkModelRef("model_name", model, "", ""); err != nil {
		return err
	}
	if !s.repo.Explicit() && !load {
		// The next scan would load it again: remove it from the directory instead.
		return errs.New(errs.KindFailedPrecondition, "the server polls its model repository: remove the model's directory to unload it, or start it with --model-control=explicit to unload by call")
	}
	return nil
}

// checkRepository accepts the one repository this server has, by its empty default name.
func checkRepository(name string) error {
	if name != "" {
		return errs.Invalid("repository_name", "%q is unknown: this server has one repository, named \"\"", name)
	}
	return nil
}
