package redact

import (
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	pem := "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END KEY-----\n"
	cases := []struct {
		name   string
		values []string
		in     string
		want   string
	}{
		{"no values", nil, "exit code 1: password=hunter22", "exit code 1: password=hunter22"},
		{"one value", []string{"hunter22"}, "exit code 1: password=hunter22", "exit code 1: password=<redacted>"},
		{"every occurrence", []string{"hunter22"}, "hunter22 hunter22\nhunter22", "<redacted> <redacted>\n<redacted>"},
		{"longest first", []string{"abcd", "abcdefgh"}, "x=abcdefgh y=abcd", "x=<redacted> y=<redacted>"},
		{"value with regexp characters", []string{"p.a$s*w(0)rd"}, "pw p.a$s*w(0)rd pXaXs", "pw <redacted> pXaXs"},
		{"too short to scrub", []string{"on", "123"}, "exit code 123: on", "exit code 123: on"},
		{"empty value", []string{""}, "exit code 1", "exit code 1"},
		{"surrounding white space trimmed", []string{"  tok3n-value\n"}, "token tok3n-value", "token <redacted>"},
		{"multi-line value line by line", []string{pem}, "read key line MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu", "read key line <redacted>"},
		{"multi-line value whole", []string{"line-one\nline-two"}, "a line-one\nline-two b", "a <redacted> b"},
		{"CRLF lines", []string{"first-line\r\nsecond-line"}, "got second-line", "got <redacted>"},
		{"unicode", []string{"pässwörd"}, "pw=pässwörd!", "pw=<redacted>!"},
		{"placeholder-like text untouched", []string{"s3cr3t!!"}, "<redacted> already", "<redacted> already"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := New(tc.values...).Scrub(tc.in); got != tc.want {
				t.Fatalf("Scrub(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestNilAndZeroScrubNothing(t *testing.T) {
	var s *Scrubber
	if s.Scrub("x hunter22") != "x hunter22" || s.Len() != 0 {
		t.Fatal("nil scrubber changed text")
	}
	if (&Scrubber{}).Scrub("x") != "x" {
		t.Fatal("zero scrubber changed text")
	}
}

// FuzzScrub: whatever the values and text, no value of MinLen or more survives in the output.
func FuzzScrub(f *testing.F) {
	f.Add("hunter22", "abcd", "exit 1: hunter22 abcdabcd")
	f.Add("aaaa", "aaaaa", "aaaaaaaaaaa")
	f.Fuzz(func(t *testing.T, v1, v2, text string) {
		out := New(v1, v2).Scrub(text)
		for _, v := range []string{v1, v2} {
			if len(v) >= MinLen && !strings.Contains(Placeholder, v) && strings.Contains(out, v) {
				// A value can reappear only by straddling a placeholder and the text around it.
				if !strings.Contains(strings.ReplaceAll(out, Placeholder, "\x00"), v) {
					continue
				}
				t.Fatalf("value %q survives in %q (from %q)", v, out, text)
			}
		}
	})
}

func TestWith(t *testing.T) {
	s := New("first-secret").With("second-secret")
	if got := s.Scrub("first-secret second-secret"); got != "<redacted> <redacted>" {
		t.Fatal(got)
	}
	var nilS *Scrubber
	if got := nilS.With("only-secret").Scrub("only-secret"); got != "<redacted>" {
		t.Fatal(got)
	}
}
