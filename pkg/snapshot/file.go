package snapshot

import (
	"fmt"
	"os"

	"github.com/constellation-sh/constellation/internal/atomicfile"
)

// ReadFile decodes the snapshot file at path; errors name the file.
func ReadFile(path string) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	defer f.Close()
	s, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// WriteFile writes data (an encoded snapshot) to path with mode 0600, so that a crash leaves
// the old file or the new one, never a torn one.
func WriteFile(path string, data []byte) error { return atomicfile.WriteFile(path, data, 0o600) }
