// Tests of the volume archive name rebasing and entry checks.

package docker

import (
	"archive/tar"
	"testing"
)

func TestRelNameAndArchiveChecks(t *testing.T) {
	for in, want := range map[string]string{
		"./": "", ".": "", "constellation-volume/": "", "constellation-volume/a/b": "a/b", "./a": "a", "a/": "a/", "/x/../y": "y",
	} {
		if got := relName(in, "constellation-volume", "."); got != want {
			t.Errorf("relName(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct {
		h  tar.Header
		ok bool
	}{
		{tar.Header{Name: "a/b", Typeflag: tar.TypeReg}, true},
		{tar.Header{Name: "/abs/ok", Typeflag: tar.TypeReg}, true},
		{tar.Header{Name: "../x", Typeflag: tar.TypeReg}, false},
		{tar.Header{Name: "a/../../x", Typeflag: tar.TypeReg}, false},
		{tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"}, false},
		{tar.Header{Name: "dev", Typeflag: tar.TypeChar}, false},
		{tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, true}, // resolved inside the container
	} {
		if err := CheckArchiveEntry(&tc.h); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.h, err)
		}
	}
}
