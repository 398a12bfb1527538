// Table tests for folding pull progress messages (pullTracker) and its summary line.

package docker

import (
	"testing"

	"github.com/moby/moby/api/types/jsonstream"
)

func TestPullTracker(t *testing.T) {
	dl := func(id string, cur, total int64) jsonstream.Message {
		return jsonstream.Message{ID: id, Status: "Downloading", Progress: &jsonstream.Progress{Current: cur, Total: total}}
	}
	st := func(id, status string) jsonstream.Message { return jsonstream.Message{ID: id, Status: status} }
	for _, tc := range []struct {
		name   string
		msgs   []jsonstream.Message
		layers []bool // add's answer per message
		want   PullProgress
	}{
		{"not about a layer", []jsonstream.Message{{Status: "Digest: sha256:x"}, st("latest", "Pulling from library/x")},
			[]bool{false, false}, PullProgress{}},
		{"downloading", []jsonstream.Message{st("a", "Pulling fs layer"), dl("a", 10, 100), st("b", "Waiting")},
			[]bool{true, true, true}, PullProgress{Layers: 2, BytesDone: 10, BytesTotal: 100}},
		{"download complete fills the bytes", []jsonstream.Message{dl("a", 10, 100), st("a", "Download complete")},
			[]bool{true, true}, PullProgress{Layers: 1, BytesDone: 100, BytesTotal: 100}},
		{"pull complete and already exists are done", []jsonstream.Message{dl("a", 5, 50), st("a", "Pull complete"), st("b", "Already exists")},
			[]bool{true, true, true}, PullProgress{Layers: 2, LayersDone: 2, BytesDone: 50, BytesTotal: 50}},
		{"downloading without detail", []jsonstream.Message{{ID: "a", Status: "Downloading"}},
			[]bool{true}, PullProgress{Layers: 1}},
	} {
		var tr pullTracker
		for i, m := range tc.msgs {
			if got := tr.add(m); got != tc.layers[i] {
				t.Errorf("%s: add(%+v) = %v, want %v", tc.name, m, got, tc.layers[i])
			}
		}
		if got := tr.progress(); got != tc.want {
			t.Errorf("%s: progress = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestPullProgressString(t *testing.T) {
	for _, tc := range []struct {
		p    PullProgress
		want string
	}{
		{PullProgress{}, "0/0 layers"},
		{PullProgress{Layers: 5, LayersDone: 2}, "2/5 layers"},
		{PullProgress{Layers: 5, LayersDone: 2, BytesDone: 12_340_000, BytesTotal: 40_100_000}, "2/5 layers, 12.3/40.1 MB"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.p, got, tc.want)
		}
	}
}
