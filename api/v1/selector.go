package v1

import (
	"fmt"
	"sort"
	"strings"
)

// Selector is a parsed label selector: "app=web,tier!=db,canary,!legacy".
// The empty selector matches everything.
type Selector struct {
	reqs []requirement
}

type selOp int

const (
	opEquals selOp = iota
	opNotEquals
	opExists
	opNotExists
)

type requirement struct {
	key   string
	op    selOp
	value string
}

// ParseSelector parses a comma-separated label selector.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	s = strings.TrimSpace(s)
	if s == "" {
		return sel, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		var r requirement
		switch {
		case strings.Contains(part, "!="):
			k, v, _ := strings.Cut(part, "!=")
			r = requirement{strings.TrimSpace(k), opNotEquals, strings.TrimSpace(v)}
		case strings.Contains(part, "=="):
			k, v, _ := strings.Cut(part, "==")
			r = requirement{strings.TrimSpace(k), opEquals, strings.TrimSpace(v)}
		case strings.Contains(part, "="):
			k, v, _ := strings.Cut(part, "=")
			r = requirement{strings.TrimSpace(k), opEquals, strings.TrimSpace(v)}
		case strings.HasPrefix(part, "!"):
			r = requirement{strings.TrimSpace(part[1:]), opNotExists, ""}
		default:
			r = requirement{part, opExists, ""}
		}
		if !validLabelKey(r.key) {
			return Selector{}, fmt.Errorf("label selector %q: invalid key %q", s, r.key)
		}
		if !labelValueRE.MatchString(r.value) {
			return Selector{}, fmt.Errorf("label selector %q: invalid value %q", s, r.value)
		}
		sel.reqs = append(sel.reqs, r)
	}
	return sel, nil
}

// SelectorFromMap returns the selector requiring every key=value of m.
func SelectorFromMap(m map[string]string) Selector {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sel Selector
	for _, k := range keys {
		sel.reqs = append(sel.reqs, requirement{k, opEquals, m[k]})
	}
	return sel
}

// Empty reports whether the selector matches everything.
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s.reqs {
		v, ok := labels[r.key]
		switch r.op {
		case opEquals:
			if !ok || v != r.value {
				return false
			}
		case opNotEquals:
			if ok && v == r.value {
				return false
			}
		case opExists:
			if !ok {
				return false
			}
		case opNotExists:
			if ok {
				return false
			}
		}
	}
	return true
}

func (s Selector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		switch r.op {
		case opEquals:
			parts[i] = r.key + "=" + r.value
		case opNotEquals:
			parts[i] = r.key + "!=" + r.value
		case opExists:
			parts[i] = r.key
		case opNotExists:
			parts[i] = "!" + r.key
		}
	}
	return strings.Join(parts, ",")
}
