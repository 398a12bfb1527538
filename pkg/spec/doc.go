// Package spec helps write stacks as Go programs: a spec is a tiny `package main` that builds
// typed objects with these helpers and calls Print, which defaults and validates them and writes
// them as a JSON array on stdout. `ctl apply -f specs/NAME` runs the program and applies what it
// prints.
//
// It imports api/v1 only.
package spec
