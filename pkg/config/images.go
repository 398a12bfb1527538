package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Images configures the images the agent copies from its peers (docs/images.md).
type Images struct {
	// GCAfter removes an image this agent loaded from a peer once no Service has referenced
	// it for that long (never one a Service references, never one a container uses). Default 0:
	// off.
	GCAfter time.Duration `description:"Remove images this agent loaded from peers once no Service has used them for this long (0: never)"`
	// SendRate caps the bytes per second this agent sends of image archives, all transfers
	// together (peers fetching an image, ctl saving one), so that a copy does not saturate a
	// slow link (a Tailscale path over the internet). Bytes per second, optionally with a unit:
	// "10000000", "10MB", "8MiB" (k, M, G are powers of 1000; Ki, Mi, Gi of 1024). Read it
	// with SendRateBytes. Default "" (or 0): unlimited.
	SendRate string `description:"Bytes per second this agent sends of image archives to peers and ctl, all transfers together, e.g. 10MB or 10000000 (0: unlimited)"`
}

// SendRateBytes is SendRate in bytes per second; 0 is unlimited.
func (i Images) SendRateBytes() (int64, error) {
	return parseByteRate(i.SendRate)
}

// parseByteRate reads "10000000", "10MB", "10M", "8MiB", "500kB/s" as bytes per second.
func parseByteRate(s string) (int64, error) {
	v := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	if v == "" {
		return 0, nil
	}
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(v[:i]), strings.TrimSpace(v[i:])
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
		"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30,
	}[strings.ToLower(unit)]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || strings.HasPrefix(v, "-") {
		return 0, fmt.Errorf("%q is not a rate in bytes per second (e.g. 10000000, 10MB, 8MiB; 0: unlimited)", s)
	}
	return int64(f * mult), nil
}
