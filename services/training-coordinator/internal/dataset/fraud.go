package dataset

import "github.com/bourse-dev/bourse/pkg/errs"

// loadFraud will adapt pkg/fraud's synthetic generator once it lands.
func loadFraud(opts Options) (train, test Dataset, err error) {
	return Dataset{}, Dataset{}, errs.New(errs.KindFailedPrecondition, "dataset fraud: not available yet")
}
