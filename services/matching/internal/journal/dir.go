package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// temporarySuffix marks files being written; a crash can leave them
// behind, and Open deletes them.
const temporarySuffix = ".tmp"

// dirListing is what Open finds in a journal directory, sequence numbers
// ascending. Files it does not recognise are left alone.
type dirListing struct {
	segments    []uint64 // first seq of each segment
	snapshots   []uint64 // seq of each snapshot
	temporaries []string
}

func listDir(dir string) (dirListing, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return dirListing{}, fmt.Errorf("journal: list %s: %w", dir, err)
	}
	var l dirListing
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if seq, ok := parseSegmentName(name); ok {
			l.segments = append(l.segments, seq)
		} else if seq, ok := parseSnapshotName(name); ok {
			l.snapshots = append(l.snapshots, seq)
		} else if strings.HasSuffix(name, temporarySuffix) {
			l.temporaries = append(l.temporaries, name)
		}
	}
	slices.Sort(l.segments)
	slices.Sort(l.snapshots)
	return l, nil
}

func removeTemporaries(dir string, names []string) error {
	for _, name := range names {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("journal: remove leftover temporary file: %w", err)
		}
	}
	return nil
}

// syncDir makes creations, renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: open directory for sync: %w", err)
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("journal: sync directory: %w", err)
	}
	return nil
}
