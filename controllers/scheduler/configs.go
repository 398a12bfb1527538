package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// indexFileConfig indexes Services by the Configs their spec.files name.
const indexFileConfig = "fileConfig"

func fileConfigs(svc *v1.Service) []string {
	names, _ := spechash.FileConfigs(&svc.Spec)
	return names
}

// configDigests is the store as the scheduler's Config cache reads it: every Config with its
// values replaced by their digests (spechash.ConfigDigest), under spec.data. A Config may hold
// a megabyte; the scheduler needs only whether the values a Service reads changed.
func configDigests(src ctrl.Source) ctrl.Source { return ctrl.MapSource(src, digestConfig) }

// digestConfig returns a copy of o, when it is a Config, whose spec.data maps each key (of
// data and binaryData) to the digest of its value; any other object as it is.
func digestConfig(o v1.Object) v1.Object {
	c, ok := o.(*v1.Config)
	if !ok {
		return o
	}
	out := &v1.Config{TypeMeta: c.TypeMeta, Metadata: c.Metadata, Spec: v1.ConfigSpec{Data: map[string]string{}}}
	for _, k := range c.Spec.Keys() {
		v, _ := c.Spec.Value(k)
		out.Spec.Data[k] = spechash.ConfigDigest(c.Metadata.Name, k, v)
	}
	return out
}

// fileVersions returns the versions of the Configs spec.files of svc names
// (spechash.ConfigPrefix + name), and whether one of them, or a key read, is missing.
func fileVersions(ctx context.Context, rd reader, svc *v1.Service) ([]spechash.SecretVersion, bool, error) {
	names, keys := spechash.FileConfigs(&svc.Spec)
	var vs []spechash.SecretVersion
	missing := false
	for _, name := range names {
		c, err := rd.Config(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			missing = true
			vs = append(vs, spechash.SecretVersion{Name: spechash.ConfigPrefix + name})
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("get configs/%s referenced by services/%s: %w", name, svc.Metadata.Name, err)
		}
		v := spechash.SecretVersion{Name: spechash.ConfigPrefix + name, UID: c.Metadata.UID}
		d, m := digestOf(c.Spec.Data, keys[name])
		v.Digest, missing = d, missing || m
		vs = append(vs, v)
	}
	return vs, missing, nil
}

// digestOf folds the digests of keys (from a digested Config or Secret) into one string; a
// key "" stands for every key (a file without a key). It reports a key that is missing.
func digestOf(data map[string]string, keys []string) (string, bool) {
	out, missing := "", false
	for _, k := range keys {
		if k == "" {
			all := make([]string, 0, len(data))
			for dk := range data {
				all = append(all, dk)
			}
			sort.Strings(all)
			out += "*="
			for _, dk := range all {
				out += dk + ":" + data[dk] + ","
			}
			out += ";"
			if len(all) != 1 {
				missing = true // the node waits until the object has exactly one key
			}
			continue
		}
		d, ok := data[k]
		if !ok {
			missing = true
			d = "-"
		}
		out += k + "=" + d + ";"
	}
	return out, missing
}

func (r cacheReader) Config(_ context.Context, name string) (*v1.Config, error) {
	if r.configs != nil {
		if c, ok := r.configs.Get(name); ok {
			return c, nil
		}
	}
	return nil, fmt.Errorf("configs/%s: %w", name, store.ErrNotFound)
}

func (r storeReader) Config(ctx context.Context, name string) (*v1.Config, error) {
	obj, err := r.st.Get(ctx, v1.KindConfig, name, store.Stale())
	if err != nil {
		return nil, err
	}
	c, ok := digestConfig(obj).(*v1.Config)
	if !ok {
		return nil, fmt.Errorf("configs/%s: got a %T", name, obj)
	}
	return c, nil
}
