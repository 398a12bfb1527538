package cloudflare

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", time.Minute}, {"7", 7 * time.Second}, {"0", 0}, {"-3", time.Minute}, {"abc", time.Minute},
		{"99999999999999999999", 5 * time.Minute}, {"100000", 5 * time.Minute},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now, time.Minute, 5*time.Minute); got != tc.want {
			t.Errorf("%q: got %s, want %s", tc.in, got, tc.want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "-1", "1e9", " 5 "} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		d := parseRetryAfter(s, now, time.Minute, 5*time.Minute)
		if d < 0 || d > 5*time.Minute {
			t.Fatalf("%q → %s, outside [0, 5m]", s, d)
		}
	})
}
