package store

import (
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func BenchmarkApplyUpdate(b *testing.B) {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = "web"
	s.Spec.Image = "registry.local/web:1"
	s.Spec.Ports = []v1.ServicePort{{Name: "http", ContainerPort: 8080}}
	s.Default()
	t := mapTable{}
	m, _ := NewMutation(OpCreate, s, time.Now(), "u")
	if _, err := Apply(t, 1, m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			s.Spec.Image = "registry.local/web:2"
		} else {
			s.Spec.Image = "registry.local/web:1"
		}
		m, _ := NewMutation(OpUpdate, s, time.Now(), "u")
		if _, err := Apply(t, int64(i+2), m); err != nil {
			b.Fatal(err)
		}
	}
}
