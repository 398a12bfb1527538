package compose

import (
	"reflect"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestDNSName(t *testing.T) {
	long := "a234567890123456789012345678901234567890123456789012345678901234567890"
	for _, tc := range []struct{ in, want string }{
		{"web", "web"},
		{"My_App.v2", "my-app-v2"},
		{"__x__", "x"},
		{"a--b", "a--b"},
		{"a!!b", "a-b"},
		{"___", ""},
		{long, long[:63]},
		{"a23456789012345678901234567890123456789012345678901234567890-2-4", "a23456789012345678901234567890123456789012345678901234567890-2"},
	} {
		if got := dnsName(tc.in); got != tc.want {
			t.Errorf("dnsName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVolumeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"data", "data"},
		{"My_Data.v1", "My_Data.v1"},
		{"a b/c", "a-b-c"},
		{"./data", "data"},
		{"_x_", "x"},
		{"///", ""},
	} {
		if got := volumeName(tc.in); got != tc.want {
			t.Errorf("volumeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPortName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target uint32
		proto  v1.Protocol
		want   string
	}{
		{"http", 80, v1.ProtocolTCP, "http"},
		{"", 80, v1.ProtocolTCP, "tcp-80"},
		{"", 53, v1.ProtocolUDP, "udp-53"},
		{"HTTP", 80, v1.ProtocolTCP, "tcp-80"},                // upper case is not a port name
		{"8080", 8080, v1.ProtocolTCP, "tcp-8080"},            // needs a letter
		{"a-very-long-port-name", 1, v1.ProtocolTCP, "tcp-1"}, // over 15 characters
		{"-web", 1, v1.ProtocolTCP, "tcp-1"},
	} {
		if got := portName(tc.name, tc.target, tc.proto); got != tc.want {
			t.Errorf("portName(%q, %d, %q) = %q, want %q", tc.name, tc.target, tc.proto, got, tc.want)
		}
	}
}

func TestLinked(t *testing.T) {
	for _, tc := range []struct {
		links []string
		dep   string
		want  bool
	}{
		{nil, "db", false},
		{[]string{"db"}, "db", true},
		{[]string{"db:database"}, "db", true},
		{[]string{"database:db"}, "db", false},
		{[]string{"cache", "db:x"}, "db", true},
	} {
		if got := linked(tc.links, tc.dep); got != tc.want {
			t.Errorf("linked(%q, %q) = %v, want %v", tc.links, tc.dep, got, tc.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1024", 1024, false},
		{"64k", 64 << 10, false},
		{"64kb", 64 << 10, false},
		{" 512M ", 512 << 20, false},
		{"2g", 2 << 30, false},
		{"2GB", 2 << 30, false},
		{"", 0, true},
		{"10b", 0, true},
		{"lots", 0, true},
	} {
		got, err := parseBytes(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestMiBAndDurPtr(t *testing.T) {
	for _, tc := range []struct {
		in   types.UnitBytes
		want int64
	}{
		{0, 0}, {1, 1}, {1 << 20, 1}, {1<<20 + 1, 2}, {512 << 20, 512},
	} {
		if got := mib(tc.in); got != tc.want {
			t.Errorf("mib(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if durPtr(nil) != nil {
		t.Error("durPtr(nil) is not nil")
	}
	d := types.Duration(1500 * 1e6)
	if got := durPtr(&d); got == nil || got.Duration.String() != "1.5s" {
		t.Errorf("durPtr(1.5s) = %v", got)
	}
}

func TestWalkLeaves(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want []string
	}{
		{"nil", nil, nil},
		{"false and zero are empty", map[string]any{"a": false, "b": 0.0, "c": "", "d": "0", "e": []any{}}, nil},
		{"set leaves", map[string]any{"b": true, "a": 2.0, "c": "x", "d": []any{1.0}}, []string{"p.a", "p.b", "p.c", "p.d"}},
		{"nested, sorted", map[string]any{"z": map[string]any{"y": "1", "x": "2"}, "a": true}, []string{"p.a", "p.z.x", "p.z.y"}},
		{"other types are leaves", int(0), []string{"p"}},
	} {
		var got []string
		walkLeaves("p", tc.v, func(p string) { got = append(got, p) })
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: walkLeaves = %q, want %q", tc.name, got, tc.want)
		}
	}
}
