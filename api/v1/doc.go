// Package v1 holds Constellation's typed objects: Service, DNSRecord, Lease, ReplicaSet, Node and
// Secret, with their defaulting, validation (every problem reported with its field path), deep
// copies and strict JSON decoding.
//
// Every object has the Kubernetes shape {apiVersion, kind, metadata, spec, status}. The store,
// the API server, the controllers and ctl all speak these types.
//
// This package imports nothing of Constellation's: everything else depends on it, never the
// reverse (see internal/deptest).
package v1
