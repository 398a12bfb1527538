package docker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// ErrFileSourceNotFound is wrapped by ResolveFiles when a Config, Secret or key a file names
// does not exist: the replica or Job waits (reason FileSourceNotFound) and is tried again.
var ErrFileSourceNotFound = errors.New("docker: file source not found")

// Getter reads one object, as the store does.
type Getter interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
}

// ResolveFiles reads the content of each of files (defaulted) from the local replica of the
// store: creating a container must never need quorum. A missing object or key is an error
// wrapping ErrFileSourceNotFound whose message names the file, the object and the key, never a value.
// The node reconciler and the Job runner use it.
func ResolveFiles(ctx context.Context, st Getter, field string, files []v1.FileMount) ([]File, error) {
	out := make([]File, 0, len(files))
	for i, f := range files {
		kind, name := f.Source()
		info, _ := v1.LookupKind(kind)
		at := fmt.Sprintf("%s[%d]", field, i)
		o, err := st.Get(ctx, kind, name, store.Stale())
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%s: %s/%s does not exist: %w", at, info.Plural, name, ErrFileSourceNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: read %s/%s: %w", at, info.Plural, name, err)
		}
		var keys []string
		value := func(string) ([]byte, bool) { return nil, false }
		switch o := o.(type) {
		case *v1.Config:
			keys = o.Spec.Keys()
			value = o.Spec.Value
		case *v1.Secret:
			for k := range o.Spec.Data {
				keys = append(keys, k)
			}
			value = func(k string) ([]byte, bool) {
				v, ok := o.Spec.Data[k]
				return []byte(v), ok
			}
		default:
			return nil, fmt.Errorf("%s: %s/%s: got a %T", at, info.Plural, name, o)
		}
		key := f.Key
		if key == "" {
			if len(keys) != 1 {
				sort.Strings(keys)
				return nil, fmt.Errorf("%s: %s/%s has %d keys (%s): set key to pick one: %w", at, info.Plural, name, len(keys), strings.Join(keys, ", "), ErrFileSourceNotFound)
			}
			key = keys[0]
		}
		content, ok := value(key)
		if !ok {
			return nil, fmt.Errorf("%s: %s/%s has no key %q: %w", at, info.Plural, name, key, ErrFileSourceNotFound)
		}
		mode := uint32(f.Mode)
		if mode == 0 {
			mode = uint32(v1.DefaultConfigFileMode)
			if kind == v1.KindSecret {
				mode = uint32(v1.DefaultSecretFileMode)
			}
		}
		out = append(out, File{Path: f.Path, Mode: mode, Content: content})
	}
	return out, nil
}
