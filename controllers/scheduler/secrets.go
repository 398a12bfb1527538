package scheduler

import (
	"context"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/runtime"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// secretVersions is the store as the scheduler's Secret cache reads it: every Secret with each
// value replaced by its keyed digest (spechash.DataDigest). The scheduler needs a Secret's
// keys and whether the values a Service reads changed to know which revision it runs; it keeps
// no value in memory and so can leak none.
type secretVersions struct {
	src runtime.Source
	key []byte
}

var _ runtime.Source = secretVersions{}

func (s secretVersions) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	objs, rev, err := s.src.List(ctx, kind, sel, opts...)
	for i, o := range objs {
		objs[i] = blankSecret(o, s.key)
	}
	return objs, rev, err
}

func (s secretVersions) Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error) {
	in, err := s.src.Watch(ctx, kind, fromRev)
	if err != nil {
		return nil, err
	}
	out := make(chan store.Event)
	go func() {
		defer close(out)
		for ev := range in {
			if ev.Object != nil {
				ev.Object = blankSecret(ev.Object, s.key)
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// blankSecret returns a copy of o, when it is a Secret, whose values are their keyed digests
// (its keys stay); any other object as it is. o is not modified.
func blankSecret(o v1.Object, key []byte) v1.Object {
	sec, ok := o.(*v1.Secret)
	if !ok {
		return o
	}
	out := &v1.Secret{TypeMeta: sec.TypeMeta, Metadata: sec.Metadata, Status: sec.Status,
		Spec: v1.SecretSpec{Data: make(v1.SecretData, len(sec.Spec.Data))}}
	for k, v := range sec.Spec.Data {
		out.Spec.Data[k] = spechash.DataDigest(key, sec.Metadata.Name, k, v)
	}
	return out
}

// defaultSecretDigestKey is the digest key of a scheduler configured without one (tests).
var defaultSecretDigestKey = []byte("constellation secret digest (tests)")

func (c *Config) secretDigestKey() []byte {
	if len(c.SecretDigestKey) == 0 {
		return defaultSecretDigestKey
	}
	return c.SecretDigestKey
}
