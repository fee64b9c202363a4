// Package fraud scores a deposit with the `fraud` model served by inference (KServe v2 ModelInfer)
// and turns the score into a verdict: decline above a threshold, and, when inference is down or
// slower than its deadline, follow a configured policy: fail open (go on unscored) up to an amount
// per currency, fail closed (decline) above it or in a currency not listed. A small deposit should
// not fail because the model is away; a large one should not slip through unscored.
//
// This is the payment service's only gRPC client outside the gRPC layer: it speaks inference's
// protocol and hands domain values back.
package fraud

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	pkgfraud "github.com/bourse-dev/bourse/pkg/fraud"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// Reasons a Verdict gives.
const (
	ReasonFraudSuspected = "fraud_suspected"  // scored above the threshold
	ReasonUnscoredClosed = "fraud_check_down" // no score, and the amount is above the fail-open limit
)

// Config tunes a Checker. Zero fields take the defaults.
type Config struct {
	Model        string // default pkgfraud.ModelName ("fraud")
	ModelVersion string // "" for the version inference serves by default
	// Threshold: a score strictly above it declines (default 0.9).
	Threshold float64
	// Timeout bounds the inference call (default 150 ms): the deposit waits for it.
	Timeout time.Duration
	// FailOpenMax is, per currency, the largest amount (minor units) that goes on unscored when
	// inference does not answer; larger amounts, and every currency not listed, are declined.
	// Empty: every unscored deposit is declined.
	FailOpenMax map[string]int64
}

// Verdict is a fraud check's answer.
type Verdict struct {
	Score   float64 // in [0, 1]; 0 when not Scored
	Scored  bool    // false: inference did not answer and Decline follows the fail-open policy
	Decline bool
	Reason  string // with Decline: ReasonFraudSuspected or ReasonUnscoredClosed
}

// Checker calls inference. It is safe for concurrent use.
type Checker struct {
	client pb.GRPCInferenceServiceClient
	cfg    Config
	log    *slog.Logger
}

// New returns a checker over an inference client (pkg/client.Dial of "consul:///inference" with the
// payment service's key; the model admits only that identity and admins). log may be nil.
func New(client pb.GRPCInferenceServiceClient, cfg Config, log *slog.Logger) *Checker {
	if cfg.Model == "" {
		cfg.Model = pkgfraud.ModelName
	}
	if cfg.Threshold <= 0 || cfg.Threshold > 1 {
		cfg.Threshold = 0.9
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 150 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{client: client, cfg: cfg, log: log}
}

// Check scores a deposit of m with features f and applies the policy. The Verdict is always
// usable; the error is non-nil (errs.KindUnavailable) exactly when inference gave no score, for
// logging: the Verdict then already follows the fail-open policy.
func (c *Checker) Check(ctx context.Context, f pkgfraud.Features, m domain.Money) (Verdict, error) {
	score, err := c.Score(ctx, f)
	if err != nil {
		v := Verdict{}
		if limit, ok := c.cfg.FailOpenMax[m.Currency]; !ok || m.Amount > limit {
			v.Decline, v.Reason = true, ReasonUnscoredClosed
		}
		c.log.WarnContext(ctx, "fraud score unavailable", "err", err, "fail_closed", v.Decline)
		return v, err
	}
	v := Verdict{Score: score, Scored: true}
	if score > c.cfg.Threshold {
		v.Decline, v.Reason = true, ReasonFraudSuspected
	}
	return v, nil
}

// Score asks inference for the probability that a payment with features f is fraud.
func (c *Checker) Score(ctx context.Context, f pkgfraud.Features) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req := &pb.ModelInferRequest{
		ModelName:    c.cfg.Model,
		ModelVersion: c.cfg.ModelVersion,
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{
			Name:     pkgfraud.InputName,
			Datatype: "FP32",
			Shape:    []int64{1, pkgfraud.NumFeatures},
			Contents: &pb.InferTensorContents{Fp32Contents: f.Vector()},
		}},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: pkgfraud.OutputName}},
	}
	resp, err := c.client.ModelInfer(ctx, req)
	if err != nil {
		return 0, errs.Wrap(errs.KindUnavailable, err, "inference ModelInfer %s", c.cfg.Model)
	}
	p, err := probability(resp)
	if err != nil {
		return 0, errs.Wrap(errs.KindUnavailable, err, "inference answer for %s", c.cfg.Model)
	}
	return p, nil
}

// probability reads the one FP32 value of the output tensor, typed or raw.
func probability(resp *pb.ModelInferResponse) (float64, error) {
	for i, o := range resp.GetOutputs() {
		if o.GetName() != pkgfraud.OutputName {
			continue
		}
		if o.GetDatatype() != "FP32" {
			return 0, fmt.Errorf("output %s is %s, want FP32", o.GetName(), o.GetDatatype())
		}
		var vals []float32
		switch {
		case len(o.GetContents().GetFp32Contents()) > 0:
			vals = o.GetContents().GetFp32Contents()
		case i < len(resp.GetRawOutputContents()):
			raw := resp.GetRawOutputContents()[i]
			if len(raw)%4 != 0 {
				return 0, fmt.Errorf("output %s: %d raw bytes", o.GetName(), len(raw))
			}
			for j := 0; j < len(raw); j += 4 {
				vals = append(vals, math.Float32frombits(binary.LittleEndian.Uint32(raw[j:])))
			}
		}
		if len(vals) != 1 {
			return 0, fmt.Errorf("output %s holds %d values, want 1", o.GetName(), len(vals))
		}
		p := float64(vals[0])
		if math.IsNaN(p) || p < 0 || p > 1 {
			return 0, fmt.Errorf("output %s is %v, not a probability", o.GetName(), p)
		}
		return p, nil
	}
	return 0, fmt.Errorf("no output %s", pkgfraud.OutputName)
}

// ParseFailOpen reads the fail-open limits of a flag: comma-separated CUR:amount in minor units,
// e.g. "USD:50000,EUR:50000,JPY:5000000". Empty is no limit (every unscored deposit declined).
func ParseFailOpen(s string) (map[string]int64, error) {
	out := map[string]int64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		cur, amt, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || len(cur) != 3 || strings.ToUpper(cur) != cur {
			return nil, errs.Invalid("fraud-fail-open", "%q: want CUR:amount, e.g. USD:50000", part)
		}
		n, err := strconv.ParseInt(amt, 10, 64)
		if err != nil || n < 0 {
			return nil, errs.Invalid("fraud-fail-open", "%q: amount must be a non-negative integer of minor units", part)
		}
		if _, dup := out[cur]; dup {
			return nil, errs.Invalid("fraud-fail-open", "%s listed twice", cur)
		}
		out[cur] = n
	}
	return out, nil
}
