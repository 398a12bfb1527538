package config

import "time"

// Images configures the images the agent copies from its peers (docs/images.md).
type Images struct {
	// GCAfter removes an image this agent loaded from a peer once no Service has referenced
	// it for that long (never one a Service references, never one a container uses). Default 0:
	// off.
	GCAfter time.Duration `description:"Remove images this agent loaded from peers once no Service has used them for this long (0: never)"`
}
