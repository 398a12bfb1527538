// Package compose converts Docker Compose projects into Constellation objects and writes them
// as a Go spec (a `package main` using pkg/spec) for `ctl convert`.
//
// Loading is compose-go's (github.com/compose-spec/compose-go/v2, the reference implementation
// Docker Compose itself uses): interpolation from .env and the environment, anchors and merge
// keys, extends, include, profiles and override files all behave as in `docker compose config`.
// The mapping is this package's: every field of a loaded service is either mapped, or reported
// with its Compose path (a Note); nothing is dropped silently. docs/convert.md has the table.
//
// It imports api/v1 and compose-go only; pkg/spec is referenced by the code it writes, not
// imported. Only pkg/ctl's convert verb imports this package.
package compose
