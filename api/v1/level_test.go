package v1

import (
	"strings"
	"testing"
)

func TestRequiredLevel(t *testing.T) {
	withFiles := &Service{Spec: ServiceSpec{Image: "x", Files: []FileMount{{Path: "/etc/x", Config: "c"}}}}
	for _, c := range []struct {
		obj   Object
		level int
		field string
	}{
		{&Service{Spec: ServiceSpec{Image: "x"}}, 1, ""},
		{withFiles, 2, "spec.files"},
		{&Secret{}, 1, ""},
		{&Node{}, 1, ""},
		{&Config{}, 2, "kind"},
		{&Job{}, 2, "kind"},
		{&CronJob{}, 2, "kind"},
	} {
		l, f := RequiredLevel(c.obj)
		if l != c.level || f != c.field {
			t.Errorf("%T: level %d field %q, want %d %q", c.obj, l, f, c.level, c.field)
		}
		if l > APILevel {
			t.Errorf("%T needs level %d, above this build's %d", c.obj, l, APILevel)
		}
	}
}

func TestNodeAPILevel(t *testing.T) {
	for v, want := range map[string]int{"": 1, "2": 2, "7": 7, "x": 1, "0": 1, "-3": 1} {
		n := &Node{}
		if v != "" {
			n.Metadata.Annotations = map[string]string{AnnotationAPILevel: v}
		}
		if got := NodeAPILevel(n); got != want {
			t.Errorf("annotation %q: level %d, want %d", v, got, want)
		}
	}
}

func TestLevelErrorNamesNodeAndVersion(t *testing.T) {
	c := &Config{TypeMeta: TypeMeta{Kind: KindConfig}}
	e := LevelError(c, "kind", 2, "n2", 1, "v0.9")
	if e.Field != "kind" || !strings.Contains(e.Message, "kind Config needs every member at API level 2") ||
		!strings.Contains(e.Message, "node n2 runs agent v0.9 (level 1)") {
		t.Fatalf("%v", e)
	}
}
