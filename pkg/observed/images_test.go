package observed

import (
	"slices"
	"testing"
)

func TestImageKeyNormalises(t *testing.T) {
	same := [][]string{
		{"nginx", "nginx:latest", "docker.io/library/nginx", "docker.io/library/nginx:latest"},
		{"constellation-test/echo:1", "docker.io/constellation-test/echo:1"},
		{"sha256:ABCD", "sha256:abcd"},
	}
	for _, refs := range same {
		for _, r := range refs[1:] {
			if ImageKey(r) != ImageKey(refs[0]) {
				t.Errorf("ImageKey(%q) != ImageKey(%q)", r, refs[0])
			}
		}
	}
	if ImageKey("nginx:1") == ImageKey("nginx:2") || ImageKey("a") == ImageKey("b") {
		t.Error("different references share a key")
	}
}

func TestSetImages(t *testing.T) {
	s := NewSet()
	s.SetNode(Node{Name: "n1", Alive: true})
	s.SetNode(Node{Name: "n2", Alive: true})
	s.SetNodeImages("n2", []uint64{ImageKey("x:1")})
	s.SetNodeImages("n1", []uint64{ImageKey("x:1"), ImageKey("y:1")})
	s.SetNodeImages("ghost", []uint64{ImageKey("x:1")}) // not a known node
	if got := s.NodesWithImage("docker.io/library/x:1"); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("holders of x:1 = %v", got)
	}
	ch := s.Changed()
	s.SetNodeImages("n2", []uint64{ImageKey("x:1")}) // the same set: no news
	select {
	case <-ch:
		t.Fatal("an unchanged set woke the watchers")
	default:
	}
	s.SetNodeImages("n2", nil)
	select {
	case <-ch:
	default:
		t.Fatal("a changed set did not wake the watchers")
	}
	s.RemoveNode("n1")
	if got := s.NodesWithImage("x:1"); len(got) != 0 {
		t.Fatalf("holders after n1 is removed and n2 dropped it = %v", got)
	}
	if got := s.NodeImageKeys("n1"); got != nil {
		t.Fatalf("a removed node keeps keys: %v", got)
	}
}
