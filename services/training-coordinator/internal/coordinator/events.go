package coordinator

import "time"

// eventCap bounds the events a job keeps for StreamJobProgress; a subscriber further behind sees a
// gap in the sequence numbers.
const eventCap = 1024

// Event is one entry of a job's progress; exactly one of the pointers is set.
type Event struct {
	Seq        uint64
	Time       time.Time
	Step       *StepEvent
	Eval       *EvalEvent
	Membership *MembershipEvent
	Status     *StatusEvent
}

// StepEvent is one applied step, with rank 0's allreduce figures.
type StepEvent struct {
	Step             int64
	Loss             float32
	SamplesPerSecond float64
	AllreduceBytes   uint64
	OptimumBytes     uint64
	AllreduceSeconds float64
}

// EvalEvent is a held-out accuracy measured after Step.
type EvalEvent struct {
	Step     int64
	Accuracy float64
}

// MembershipEvent is a new generation.
type MembershipEvent struct {
	Generation uint64
	Members    []Member
	Step       int64
}

// StatusEvent is a status change; ModelPath is set once the job succeeded.
type StatusEvent struct {
	Status    Status
	Reason    string
	ModelPath string
	// Set on the event reporting an export.
	ExportedModel   string
	ExportedVersion int64
	ExportError     string
}

// eventLog is a ring of a job's latest events. Guarded by the coordinator's mutex.
type eventLog struct {
	buf  []Event
	next uint64 // seq of the next event (from 1)
}

func (l *eventLog) add(now time.Time, e Event) {
	if l.next == 0 {
		l.next = 1
	}
	e.Seq, e.Time = l.next, now
	l.next++
	if len(l.buf) < eventCap {
		l.buf = append(l.buf, e)
		return
	}
	l.buf[int((e.Seq-1)%eventCap)] = e
}

// since returns the events after seq, oldest first.
func (l *eventLog) since(seq uint64) []Event {
	var out []Event
	first := uint64(1)
	if l.next > eventCap {
		first = l.next - eventCap
	}
	for s := max(seq+1, first); s < l.next; s++ {
		out = append(out, l.buf[int((s-1)%eventCap)])
	}
	return out
}
