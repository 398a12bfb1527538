package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// DataKeyRotatePath is the agent's route for a data key rotation (pkg/seal.RotatePath).
const DataKeyRotatePath = "/cluster/datakey/rotate"

// DataKeyProgress is reported while Secrets are sealed again: Done of Total so far.
type DataKeyProgress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// DataKeyRotation is what a rotation did.
type DataKeyRotation struct {
	// ActiveKeyID is the key every Secret is sealed with now.
	ActiveKeyID string `json:"activeKeyID"`
	// Dropped are the old keys removed from the keyring.
	Dropped []string `json:"dropped"`
	// Resealed Secrets of Secrets in all.
	Resealed int `json:"resealed"`
	Secrets  int `json:"secrets"`
	// Resumed: this run finished an interrupted rotation instead of starting a new one.
	Resumed bool `json:"resumed"`
}

// ErrRotationCut is returned when the answer ended before the rotation did: running it again
// finishes the job.
var ErrRotationCut = errors.New("client: the data key rotation was cut off before it finished; run it again to finish it")

// RotateDataKey asks the agent to make a new data key active, seal every Secret again with it
// and drop the old key (POST /cluster/datakey/rotate). progress, when not nil, is called as
// Secrets are sealed again. The client timeout does not apply: the answer streams for as long as
// the rotation runs.
func (c *Client) RotateDataKey(ctx context.Context, progress func(DataKeyProgress)) (DataKeyRotation, error) {
	resp, err := c.do(ctx, http.MethodPost, DataKeyRotatePath, nil, nil)
	if err != nil {
		return DataKeyRotation{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l struct {
			Progress *DataKeyProgress `json:"progress"`
			Result   *DataKeyRotation `json:"result"`
			Error    string           `json:"error"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			return DataKeyRotation{}, fmt.Errorf("decode server answer: %w", err)
		}
		switch {
		case l.Error != "":
			return DataKeyRotation{}, &Error{StatusCode: http.StatusInternalServerError, Message: l.Error}
		case l.Result != nil:
			return *l.Result, nil
		case l.Progress != nil && progress != nil:
			progress(*l.Progress)
		}
	}
	if ctx.Err() != nil {
		return DataKeyRotation{}, ctx.Err()
	}
	return DataKeyRotation{}, ErrRotationCut
}
