// Package ctl implements the operator CLI (cmd/ctl): the cobra commands apply, get, describe,
// delete, diff, routes, cordon, uncordon, drain, rollout undo and version, the table printers and
// the reading of objects from files, directories, stdin and Go spec packages (go run).
//
// It talks to the cluster only through pkg/client; it must not import pkg/store, pkg/apiserver or
// controllers (its end-to-end test imports them, the package does not). `convert` is the one
// verb that needs no cluster: it links pkg/compose (and through it compose-go), which no other
// package of ctl may import.
package ctl
