package repository

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/bourse-dev/bourse/services/inference/internal/cache"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// Request is a decoded inference request.
type Request struct {
	Model   string
	Version string // "" = newest ready
	Inputs  []tensor.Tensor
	Outputs []string // names wanted; empty = all
	// Caller is who asks; the model's access rule must admit it (the zero Caller passes only
	// models without a rule).
	Caller Caller
}

// Response is what one request gets back.
type Response struct {
	Model   string
	Version string
	Outputs []tensor.Tensor
	Cached  bool
}

// Infer validates a request against its model version and runs it, through the response cache
// when the model enables it. The model's rule must admit req.Caller; it is checked before the
// request's tensors, versions or the cache are looked at.
func (m *Manager) Infer(ctx context.Context, req Request) (Response, error) {
	v, err := m.resolve(req.Caller, req.Model, req.Version)
	if err != nil {
		return Response{}, err
	}
	defer v.release()
	ctx, sp := tracer.Start(ctx, "model infer", trace.WithAttributes(
		attribute.String("model", v.model), attribute.String("version", v.label)))
	defer sp.End()
	resp, err := m.infer(ctx, v, req)
	v.metrics.Request(v.model, v.label, err)
	if err != nil {
		sp.RecordError(err)
		sp.SetStatus(codes.Error, "inference failed")
	}
	sp.SetAttributes(attribute.Bool("cached", resp.Cached))
	return resp, err
}

var tracer = otel.Tracer("bourse/inference")

func (m *Manager) infer(ctx context.Context, v *version, req Request) (Response, error) {
	inputs, rows, err := conform(v.cfg, req.Inputs)
	if err != nil {
		return Response{}, err
	}
	wanted, err := wantedOutputs(v.cfg, req.Outputs)
	if err != nil {
		return Response{}, err
	}
	resp := Response{Model: v.model, Version: v.label}
	var key string
	useCache := v.cfg.ResponseCache && m.opts.Cache != nil
	if useCache {
		key = cache.Key(v.model, v.label, inputs, req.Outputs)
		if b, ok := m.opts.Cache.Get(ctx, key); ok {
			if outs, err := cache.Decode(b); err == nil {
				v.metrics.Cache(v.model, v.label, true)
				resp.Outputs, resp.Cached = outs, true
				return resp, nil
			}
		}
		v.metrics.Cache(v.model, v.label, false)
	}
	all, err := v.run(ctx, inputs, rows)
	if err != nil {
		return Response{}, err
	}
	resp.Outputs = make([]tensor.Tensor, len(wanted))
	for i, k := range wanted {
		resp.Outputs[i] = all[k]
	}
	if useCache {
		m.opts.Cache.Set(ctx, key, cache.Encode(resp.Outputs))
	}
	return resp, nil
}
