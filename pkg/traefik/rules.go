// Traefik rules: host and SNI matchers (a wildcard is a one-label regexp), path prefixes, entry
// point names, and the string-set helpers the renderer sorts with. Pure.

package traefik

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

func compact(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := append([]string(nil), s...)
	sort.Strings(out)
	return compact(out)
}

var (
	entryPointRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)
	// pathRE is what a path prefix may hold inside a backquoted rule: no quotes, spaces, control
	// characters or non-ASCII.
	pathRE = regexp.MustCompile("^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
)

func validEntryPoint(ep string) bool { return entryPointRE.MatchString(ep) }

// hostMatcher returns the matcher for a host: Host(`a.b`) or, for "*.b", a regexp matching
// exactly one label (Traefik v3's Host does not take wildcards).
func hostMatcher(host, exact, re string) (string, error) {
	host = strings.TrimSuffix(host, ".")
	if !isHostName(host) {
		return "", fmt.Errorf("invalid host %q", host)
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		return re + "(`^[^.]+\\." + regexp.QuoteMeta(strings.ToLower(rest)) + "$`)", nil
	}
	return exact + "(`" + strings.ToLower(host) + "`)", nil
}

// isHostName is v1.IsDNSName(host, true) without regexps (it is on the render path of every
// route); FuzzIsHostName keeps the two in agreement.
func isHostName(s string) bool {
	if strings.HasPrefix(s, "*.") {
		s = s[2:]
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for s != "" {
		label := s
		if i := strings.IndexByte(s, '.'); i >= 0 {
			label, s = s[:i], s[i+1:]
			if s == "" {
				return false // "a..": empty last label
			}
		} else {
			s = ""
		}
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func httpRule(host, prefix string) (string, error) {
	m, err := hostMatcher(host, "Host", "HostRegexp")
	if err != nil {
		return "", err
	}
	if prefix == "" {
		return m, nil
	}
	if !pathRE.MatchString(prefix) {
		return "", fmt.Errorf("invalid path prefix %q", prefix)
	}
	return m + " && PathPrefix(`" + prefix + "`)", nil
}

func sniRule(sni string) (string, error) {
	if sni == "*" {
		return "HostSNI(`*`)", nil
	}
	return hostMatcher(sni, "HostSNI", "HostSNIRegexp")
}
