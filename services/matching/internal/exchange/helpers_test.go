package exchange

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func asErr(err error, target **errs.Error) bool { return errors.As(err, target) }

var testClockNanos atomic.Int64

func setClock(t time.Time) { testClockNanos.Store(t.UnixNano()) }

// clockNow reads the clock set by setClock, starting at base.
func clockNow(base func() int64) int64 {
	if v := testClockNanos.Load(); v != 0 {
		return v
	}
	return base()
}
