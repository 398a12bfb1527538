package traefik

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// The htpasswd hash formats a basic-auth Secret may hold: bcrypt ($2y$, $2a$, $2b$, cost
// 04-31), Apache MD5-crypt ($apr1$) and SHA-1 ({SHA}, base64). Anything else, a plain password
// above all, is never copied into the Traefik configuration: it would be served at
// /api/providers/traefik and on Traefik's dashboard.
var (
	bcryptRE = regexp.MustCompile(`^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$`)
	apr1RE   = regexp.MustCompile(`^\$apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}$`)
	shaRE    = regexp.MustCompile(`^\{SHA\}[A-Za-z0-9+/]{27}=$`)
)

// HashFormats names the accepted formats, for messages.
const HashFormats = "an htpasswd hash: bcrypt ($2y$, $2a$, $2b$), MD5-crypt ($apr1$) or {SHA} (htpasswd -nB USER)"

// IsHTPasswdHash reports whether v is an htpasswd hash in one of the accepted formats.
func IsHTPasswdHash(v string) bool {
	return bcryptRE.MatchString(v) || apr1RE.MatchString(v) || shaRE.MatchString(v)
}

// basicAuthEntryProblem says why entry user of a basic-auth Secret cannot be rendered, or "".
// The value never goes into the message: it is a secret.
func basicAuthEntryProblem(user, hash string) string {
	switch {
	case user == "" || strings.ContainsAny(user, ": \t\r\n"):
		return fmt.Sprintf("key %q is not a user name (no ':' or white space)", user)
	case !IsHTPasswdHash(hash):
		return fmt.Sprintf("key %q does not hold %s; a plain password is never rendered", user, HashFormats)
	}
	return ""
}

// BasicAuthProblems lists, sorted by key, why entries of a basic-auth Secret's data cannot be
// rendered. Nil: every entry is a user with an htpasswd hash.
func BasicAuthProblems(data v1.SecretData) []string {
	users := make([]string, 0, len(data))
	for u := range data {
		users = append(users, u)
	}
	sort.Strings(users)
	var out []string
	for _, u := range users {
		if p := basicAuthEntryProblem(u, data[u]); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// AdmitBasicAuth checks the basic-auth Secrets svc's routes name against what is stored: get
// returns the Secret, or nil when it does not exist (yet: it may be created after the Service,
// and a missing one locks the route rather than opening it). Each bad entry is refused at
// spec.routes.http[i].middlewares.basicAuthSecret, naming the Secret and the key.
func AdmitBasicAuth(svc *v1.Service, get func(name string) *v1.Secret) v1.ErrorList {
	if svc.Spec.Routes == nil {
		return nil
	}
	var errs v1.ErrorList
	for i, h := range svc.Spec.Routes.HTTP {
		if h.Middlewares == nil || h.Middlewares.BasicAuthSecret == "" {
			continue
		}
		name := h.Middlewares.BasicAuthSecret
		sec := get(name)
		if sec == nil {
			continue
		}
		for _, p := range BasicAuthProblems(sec.Spec.Data) {
			errs = append(errs, &v1.FieldError{
				Field:   fmt.Sprintf("spec.routes.http[%d].middlewares.basicAuthSecret", i),
				Message: fmt.Sprintf("secret %q: %s", name, p),
			})
		}
	}
	return errs
}

// AdmitBasicAuthSecret checks a Secret about to be written against the stored Services that
// name it for basic auth: each bad entry is refused at spec.data[KEY], naming the route that
// uses it. A Secret no route names may hold anything.
func AdmitBasicAuthSecret(sec *v1.Secret, services []*v1.Service) v1.ErrorList {
	var users []string
	for _, s := range services {
		if s.Spec.Routes == nil {
			continue
		}
		for i, h := range s.Spec.Routes.HTTP {
			if h.Middlewares != nil && h.Middlewares.BasicAuthSecret == sec.Metadata.Name {
				users = append(users, fmt.Sprintf("services/%s spec.routes.http[%d].middlewares.basicAuthSecret", s.Metadata.Name, i))
			}
		}
	}
	if len(users) == 0 {
		return nil
	}
	sort.Strings(users)
	keys := make([]string, 0, len(sec.Spec.Data))
	for k := range sec.Spec.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs v1.ErrorList
	for _, k := range keys {
		if p := basicAuthEntryProblem(k, sec.Spec.Data[k]); p != "" {
			errs = append(errs, &v1.FieldError{
				Field:   "spec.data[" + k + "]",
				Message: fmt.Sprintf("%s (used for basic auth by %s)", p, strings.Join(users, ", ")),
			})
		}
	}
	return errs
}
