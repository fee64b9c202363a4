//go:build !unix

package journal

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir creates dir/LOCK but cannot lock it on this platform: keeping a
// second process out is left to the deployment.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: open lock file: %w", err)
	}
	return f, nil
}

func unlockDir(f *os.File) { f.Close() }
