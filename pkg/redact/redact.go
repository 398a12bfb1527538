package redact

import (
	"sort"
	"strings"
)

// Placeholder replaces every secret value found.
const Placeholder = "<redacted>"

// MinLen is the shortest value scrubbed. Shorter values ("1", "on") would shred every message
// they occur in, and a 1-3 byte value is no secret that redaction could protect.
const MinLen = 4

// Scrubber replaces known secret values in text. The zero value scrubs nothing. It is
// immutable once built and safe for concurrent use.
type Scrubber struct {
	// values, longest first, so that a value containing another is replaced whole.
	values []string
}

// New returns a Scrubber for values. A multi-line value is also scrubbed line by line (a log
// usually prints a PEM key or a config file one line at a time); values and lines shorter than
// MinLen, after trimming surrounding white space, are left out.
func New(values ...string) *Scrubber {
	set := map[string]bool{}
	addOne := func(v string) {
		if len(v) >= MinLen {
			set[v] = true
		}
	}
	for _, v := range values {
		addOne(v)
		if t := strings.TrimSpace(v); t != v {
			addOne(t)
		}
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				addOne(strings.TrimSpace(line))
			}
		}
	}
	s := &Scrubber{values: make([]string, 0, len(set))}
	for v := range set {
		s.values = append(s.values, v)
	}
	sort.Slice(s.values, func(i, j int) bool {
		if len(s.values[i]) != len(s.values[j]) {
			return len(s.values[i]) > len(s.values[j])
		}
		return s.values[i] < s.values[j]
	})
	return s
}

// Scrub returns text with every known value replaced by Placeholder.
func (s *Scrubber) Scrub(text string) string {
	if s == nil || text == "" {
		return text
	}
	for _, v := range s.values {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, Placeholder)
		}
	}
	return text
}

// Len is the number of values (and lines of values) scrubbed.
func (s *Scrubber) Len() int {
	if s == nil {
		return 0
	}
	return len(s.values)
}

// With returns a Scrubber for s's values and values.
func (s *Scrubber) With(values ...string) *Scrubber {
	if s == nil {
		return New(values...)
	}
	return New(append(append([]string(nil), s.values...), values...)...)
}
