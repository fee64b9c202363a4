package store

import (
	"context"
	"log/slog"

	"github.com/bourse-dev/bourse/services/risk/internal/engine"
)

// KeepReservationIDs reserves a further range of reservation ids durably whenever eng says it is
// running low, then lets eng issue them. It returns when ctx ends or the store fails (which stops
// the service: see Options.OnFail).
func KeepReservationIDs(ctx context.Context, s *Store, eng *engine.Engine, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-eng.ReservationIDsLow():
		}
		limit, err := s.ReserveIDs(ctx, eng.ReservationIDHigh())
		if err != nil {
			if ctx.Err() == nil {
				log.Error("reserving reservation ids", "err", err)
			}
			return
		}
		if err := eng.ExtendReservationIDs(limit); err != nil {
			log.Error("extending reservation ids", "err", err)
			return
		}
	}
}
