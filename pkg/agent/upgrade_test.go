package agent

import (
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// A new kind or field is refused while any Node (down or not, until removed) announced a lower
// API level, and accepted once every one announced this build's.
func TestLowestLevelGatesNewFeatures(t *testing.T) {
	node := func(name, level, version string) *v1.Node {
		n := &v1.Node{}
		n.Metadata.Name = name
		n.Status.AgentVersion = version
		if level != "" {
			n.Metadata.Annotations = map[string]string{v1.AnnotationAPILevel: level}
		}
		return n
	}
	cfg := &v1.Config{TypeMeta: v1.TypeMeta{Kind: v1.KindConfig}}
	upgraded := node("n1", "2", "new")
	old := node("n2", "", "old") // an agent from before levels announces none
	announceLevel(upgraded)

	e := lowestLevel(cfg, "kind", 2, []v1.Object{upgraded, old})
	if e == nil || e.Field != "kind" || !strings.Contains(e.Message, "node n2 runs agent old (level 1)") {
		t.Fatalf("mixed cluster: %v", e)
	}
	announceLevel(old)
	if e := lowestLevel(cfg, "kind", 2, []v1.Object{upgraded, old}); e != nil {
		t.Fatalf("every member upgraded: %v", e)
	}
	if got := old.Metadata.Annotations[v1.AnnotationAPILevel]; got != "2" {
		t.Fatalf("announced %q", got)
	}
}
