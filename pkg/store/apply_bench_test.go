package store

import (
	"fmt"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func BenchmarkApplyUpdate(b *testing.B) {
	b.Run("Apply", func(b *testing.B) { benchApplyUpdate(b, nil) })
	b.Run("Applier", func(b *testing.B) { benchApplyUpdate(b, NewApplier(16)) })
}

func benchApplyUpdate(b *testing.B, ap *Applier) {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = "web"
	s.Spec.Image = "registry.local/web:1"
	s.Spec.Ports = []v1.ServicePort{{Name: "http", ContainerPort: 8080}}
	s.Default()
	t := mapTable{}
	m, _ := NewMutation(OpCreate, s, time.Now(), "u")
	if _, err := ap.Apply(t, 1, m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	muts := make([]Mutation, 2)
	for i := range muts {
		s.Spec.Image = fmt.Sprintf("registry.local/web:%d", i)
		muts[i], _ = NewMutation(OpUpdate, s, time.Now(), "u")
	}
	for i := 0; b.Loop(); i++ {
		if _, err := ap.Apply(t, int64(i+2), muts[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}
