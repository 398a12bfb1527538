package seal

import (
	"encoding/json"
	"fmt"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// parseSealed decodes a spec.sealed envelope as JSON and checks its shape.
func parseSealed(b []byte) (*v1.SealedData, error) {
	var sd v1.SealedData
	if err := json.Unmarshal(b, &sd); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := checkShape(&sd); err != nil {
		return nil, err
	}
	return &sd, nil
}
