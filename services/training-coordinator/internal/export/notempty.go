package export

import (
	"errors"
	"syscall"
)

// isNotEmpty reports rename's answer when the target directory exists and is not empty.
func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
