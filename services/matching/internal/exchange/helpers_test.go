package exchange

import (
	"errors"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func asErr(err error, target **errs.Error) bool { return errors.As(err, target) }
