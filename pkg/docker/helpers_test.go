// Table tests for the client's pure helpers: timeout defaults, error mapping, label filters and
// short IDs.

package docker

import (
	"errors"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

func TestTimeoutsWithDefaults(t *testing.T) {
	d := DefaultTimeouts()
	if got := (Timeouts{}).withDefaults(); got != d {
		t.Errorf("zero Timeouts = %+v, want the defaults %+v", got, d)
	}
	if got := (Timeouts{Call: -1, Slow: -time.Second}).withDefaults(); got != d {
		t.Errorf("negative Timeouts = %+v, want the defaults %+v", got, d)
	}
	set := Timeouts{Call: 1, StopGrace: 2, Create: 3, Pull: 4, Slow: 5}
	if got := set.withDefaults(); got != set {
		t.Errorf("set Timeouts = %+v, want them kept", got)
	}
	if got := (Timeouts{Pull: time.Hour}).withDefaults(); got.Pull != time.Hour || got.Call != d.Call {
		t.Errorf("one set field = %+v", got)
	}
}

func TestWrap(t *testing.T) {
	if wrap(nil, "x") != nil {
		t.Fatal("wrap(nil) is not nil")
	}
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: no sentinel
	}{
		{"port taken", errors.New("driver failed: Bind for 0.0.0.0:80 failed: port is already allocated"), ErrPortConflict},
		{"address in use", errors.New("listen tcp :53: bind: address already in use"), ErrPortConflict},
		{"bind source", errors.New("invalid mount config: bind source path does not exist: /x"), ErrVolumeSource},
		{"not found", cerrdefs.ErrNotFound.WithMessage("no such container"), ErrNotFound},
		{"other", errors.New("boom"), nil},
	} {
		got := wrap(tc.err, "start container %s", "abc")
		if !errors.Is(got, tc.err) {
			t.Errorf("%s: %v does not wrap the cause", tc.name, got)
		}
		if got.Error()[:len("start container abc: ")] != "start container abc: " {
			t.Errorf("%s: %q lacks the context", tc.name, got)
		}
		for _, s := range []error{ErrPortConflict, ErrVolumeSource, ErrNotFound, ErrUnavailable} {
			if errors.Is(got, s) != (s == tc.want) {
				t.Errorf("%s: errors.Is(%v, %v) = %v", tc.name, got, s, errors.Is(got, s))
			}
		}
	}
}

func TestLabelStringAndShort(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"a": "1"}, "a=1"},
		{map[string]string{"b": "2", "a": "1", "c": ""}, "a=1,b=2,c="},
	} {
		if got := labelString(tc.in); got != tc.want {
			t.Errorf("labelString(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {"abc", "abc"}, {"0123456789ab", "0123456789ab"}, {"0123456789abcdef", "0123456789ab"},
	} {
		if got := short(tc.in); got != tc.want {
			t.Errorf("short(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
