package scheduler

import (
	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/spechash"
)

// secretVersions is the store as the scheduler's Secret cache reads it: every Secret with each
// value replaced by its keyed digest (spechash.DataDigest). The scheduler needs a Secret's
// keys and whether the values a Service reads changed to know which revision it runs; it keeps
// no value in memory and so can leak none.
func secretVersions(src ctrl.Source, key []byte) ctrl.Source {
	return ctrl.MapSource(src, func(o v1.Object) v1.Object { return blankSecret(o, key) })
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
