package store

import (
	"context"
	"errors"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Getter is the read a caller of SecretValue needs of a Store.
type Getter interface {
	Get(ctx context.Context, kind, name string, opts ...ReadOption) (v1.Object, error)
}

// SecretValue reads key of Secret name from the local replica (Stale: creating a container must
// never need quorum; a linearizable read waits up to the store's request timeout when the
// cluster has none, e.g. while nodes come back one by one after a reboot). found is false when
// the Secret or its key does not exist.
func SecretValue(ctx context.Context, st Getter, name, key string) (value string, found bool, err error) {
	o, err := st.Get(ctx, v1.KindSecret, name, Stale())
	if errors.Is(err, ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	v, ok := o.(*v1.Secret).Spec.Data[key]
	return v, ok, nil
}
