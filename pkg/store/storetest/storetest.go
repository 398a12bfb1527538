// Package storetest is the conformance suite every store.Store implementation must pass: the
// in-memory store and the replicated raft store run the same tests.
package storetest

import (
	"context"
	"strconv"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Factory returns a fresh, empty store for one test; the suite closes it.
type Factory func(t *testing.T) store.Store

// Run runs the whole suite against stores from newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateDuplicate", testCreateDuplicate},
		{"CreateWithResourceVersion", testCreateWithResourceVersion},
		{"InvalidRejected", testInvalidRejected},
		{"UpdateCAS", testUpdateCAS},
		{"GenerationOnlyOnSpecChange", testGeneration},
		{"SecretGenerationOnlyOnDataChange", testSecretGeneration},
		{"NoOpWriteKeepsRevision", testNoOp},
		{"StatusSeparateFromSpec", testStatusSeparate},
		{"StoreOwnedMetadata", testStoreOwnedMetadata},
		{"DeleteWithoutFinalizers", testDelete},
		{"DeleteWithFinalizers", testDeleteFinalizers},
		{"DeletePrecondition", testDeletePrecondition},
		{"ListSelectorAndRevision", testList},
		{"WatchOrderedFromRevision", testWatch},
		{"WatchAllKinds", testWatchAllKinds},
		{"WatchTooOld", testWatchTooOld},
		{"ConcurrentCAS", testConcurrentCAS},
		{"RevisionsStrictlyIncrease", testRevisions},
		{"UnknownFieldsFromNewerVersion", testUnknownFields},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// Service returns a valid Service named name.
func Service(name string, labels map[string]string) *v1.Service {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = name
	s.Metadata.Labels = labels
	s.Spec.Image = "registry.local/web:1"
	s.Spec.Ports = []v1.ServicePort{{Name: "http", ContainerPort: 8080}}
	s.Default()
	return s
}

func mustCreate(t *testing.T, s store.Store, o v1.Object) v1.Object {
	t.Helper()
	out, err := s.Create(ctx(t), o)
	if err != nil {
		t.Fatalf("create %s: %v", v1.KeyOf(o), err)
	}
	return out
}

func rv(t *testing.T, o v1.Object) int64 {
	t.Helper()
	n, err := strconv.ParseInt(o.GetMetadata().ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q is not a decimal revision", o.GetMetadata().ResourceVersion)
	}
	return n
}
