// Package config holds the agent's configuration: one struct with documented defaults, loaded
// with github.com/traefik/paerser from a TOML file (--configFile), then CONSTELLATION_*
// environment variables, then flags, each layer overriding the one before. Options are named
// Traefik's way: dotted and case-insensitive (--api.address, CONSTELLATION_API_ADDRESS).
//
// It imports nothing of Constellation's.
package config
