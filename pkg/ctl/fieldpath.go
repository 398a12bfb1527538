package ctl

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// withFieldPath rewrites an unknown-field decode error so that it names the full path
// ("spec.healthCheck.intervl") where encoding/json names only the key ("intervl").
func withFieldPath(err error, raw []byte, kind string) error {
	var de *v1.DecodeError
	if !errors.As(err, &de) || de.Field == "" || strings.ContainsAny(de.Field, ".[") || de.Err.Error() != "unknown field" {
		return err
	}
	info, ok := v1.LookupKind(kind)
	if !ok {
		return err
	}
	var doc any
	if json.Unmarshal(raw, &doc) != nil {
		return err
	}
	var paths []string
	unknownFields(doc, reflect.TypeOf(info.New()), "", &paths)
	for _, p := range paths {
		if p == de.Field || strings.HasSuffix(p, "."+de.Field) {
			return &v1.DecodeError{Field: p, Err: de.Err}
		}
	}
	return err
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// unknownFields appends the path of every key in doc that type t does not have.
func unknownFields(doc any, t reflect.Type, p string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	join := func(name string) string {
		if p == "" {
			return name
		}
		return p + "." + name
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := doc.(map[string]any)
		if !ok {
			return
		}
		fields := map[string]reflect.Type{}
		jsonFields(t, fields)
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if ft, ok := fields[k]; ok {
				unknownFields(m[k], ft, join(k), out)
			} else {
				*out = append(*out, join(k))
			}
		}
	case reflect.Slice, reflect.Array:
		s, ok := doc.([]any)
		if !ok {
			return
		}
		for i, e := range s {
			unknownFields(e, t.Elem(), p+"["+strconv.Itoa(i)+"]", out)
		}
	case reflect.Map:
		m, ok := doc.(map[string]any)
		if !ok {
			return
		}
		for k, e := range m {
			unknownFields(e, t.Elem(), p+"["+k+"]", out)
		}
	}
}

// jsonFields maps the JSON names of t's fields (embedded structs flattened) to their types.
func jsonFields(t reflect.Type, into map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				jsonFields(ft, into)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		into[name] = f.Type
	}
}
