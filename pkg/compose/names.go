// Names and small value mappings: Compose names made DNS labels, volume and port names, sizes
// and durations, and the secret-looking variable test. All pure.

package compose

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// The shapes api/v1 validates, checked here so that a name it would refuse is a note instead.
var (
	dnsBad       = regexp.MustCompile(`[^a-z0-9-]+`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	portNameRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dockerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
)

// dnsName makes a Compose name a DNS label: lower case, '_' and '.' become '-'.
func dnsName(n string) string {
	n = dnsBad.ReplaceAllString(strings.ToLower(n), "-")
	n = strings.Trim(n, "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}

var volBad = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func volumeName(n string) string {
	n = volBad.ReplaceAllString(n, "-")
	return strings.Trim(n, "-._")
}

// secretName says whether an environment variable holds a credential by its name (tokens split
// on '_': PASSWORD, SECRET, TOKEN, KEY, ...; not *_FILE, which names a file) or its value (a URL
// with a password in it).
var (
	secretWords = map[string]bool{"PASSWORD": true, "PASSWD": true, "PASS": true, "PWD": true, "SECRET": true,
		"TOKEN": true, "KEY": true, "APIKEY": true, "CREDENTIALS": true, "PRIVATE": true, "SALT": true,
		"SECRETKEY": true, "AUTH": true}
	notSecretLast = map[string]bool{"FILE": true, "PATH": true, "DIR": true, "ID": true, "NAME": true, "USER": true,
		"USERNAME": true, "LENGTH": true, "HEADER": true, "URL": true, "ALGORITHM": true}
	urlPassword = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://[^/:@\s]*:[^@/\s]+@`)
)

func looksSecret(name, value string) bool {
	if value == "" {
		return false
	}
	if urlPassword.MatchString(value) {
		return true
	}
	toks := strings.Split(strings.ToUpper(name), "_")
	if notSecretLast[toks[len(toks)-1]] {
		return false
	}
	for _, t := range toks {
		if secretWords[t] {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func durPtr(d *types.Duration) *v1.Duration {
	if d == nil {
		return nil
	}
	return &v1.Duration{Duration: time.Duration(*d)}
}

func mib(b types.UnitBytes) int64 { return int64(math.Ceil(float64(b) / (1 << 20))) }

// linked says whether links name dep (compose-go turns a link into depends_on with restart).
func linked(links []string, dep string) bool {
	for _, l := range links {
		if n, _, _ := strings.Cut(l, ":"); n == dep {
			return true
		}
	}
	return false
}

// portName names a port: Compose's name when it is a valid port name, else tcp-N / udp-N.
func portName(n string, target uint32, proto v1.Protocol) string {
	if n != "" && len(n) <= 15 && portNameRE.MatchString(n) &&
		strings.ContainsAny(n, "abcdefghijklmnopqrstuvwxyz") {
		return n
	}
	return fmt.Sprintf("%s-%d", proto, target)
}

func parseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for suf, m := range map[string]int64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30} {
		if strings.HasSuffix(s, suf) || strings.HasSuffix(s, suf+"b") {
			s = strings.TrimSuffix(strings.TrimSuffix(s, "b"), suf)
			mult = m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}
