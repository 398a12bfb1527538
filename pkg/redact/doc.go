// Package redact scrubs known secret values out of text that is about to leave the agent
// (replica status messages built from a crashed container's last log lines, health-check
// output): every occurrence of a value becomes "<redacted>".
//
// It is pure and imports only the standard library.
package redact
