package grpcapi

import (
	"context"
	"math"

	"github.com/bourse-dev/bourse/pkg/errs"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// GetSettlementStatus reports every shard's settlement with risk.
func (s *Server) GetSettlementStatus(context.Context, *matchingv1.GetSettlementStatusRequest) (*matchingv1.GetSettlementStatusResponse, error) {
	out := &matchingv1.GetSettlementStatusResponse{}
	for _, st := range s.x.SettlementStatus() {
		out.Shards = append(out.Shards, shardSettlementToProto(st))
	}
	return out, nil
}

// ResumeSettlement retries a halted shard's settlement now.
func (s *Server) ResumeSettlement(_ context.Context, req *matchingv1.ResumeSettlementRequest) (*matchingv1.ResumeSettlementResponse, error) {
	if req.GetShard() > math.MaxInt32 {
		return nil, errs.Invalid("shard", "no such shard")
	}
	st, err := s.x.ResumeSettlement(int(req.GetShard()))
	if err != nil {
		return nil, err
	}
	return &matchingv1.ResumeSettlementResponse{Shard: shardSettlementToProto(st)}, nil
}

func shardSettlementToProto(st exchange.ShardSettlement) *matchingv1.ShardSettlement {
	return &matchingv1.ShardSettlement{Shard: uint32(st.Shard), Epoch: st.Epoch, JournalSeq: st.JournalSeq, SettledSeq: st.SettledSeq,
		Queued: uint32(min(st.Queued, math.MaxUint32)), Halted: st.Halted, HaltReason: st.HaltReason, Syncing: st.Syncing,
		RiskIncarnation: st.RiskIncarnation}
}
