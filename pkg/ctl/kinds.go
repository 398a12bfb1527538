package ctl

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// routesKind is the pseudo-kind "routes": GET /api/routes, not an object in the store.
const routesKind = "routes"

// resolveKind maps what the operator typed (plural, singular, short, Kind, or "routes") to a
// kind. isRoutes reports the routes view.
func resolveKind(name string) (info v1.KindInfo, isRoutes bool, err error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == routesKind || n == "route" {
		return v1.KindInfo{}, true, nil
	}
	if info, ok := v1.LookupKind(n); ok && !info.Internal() {
		return info, false, nil
	}
	return v1.KindInfo{}, false, fmt.Errorf("unknown kind %q (known: %s, routes; short: svc, dns, rs, no, ev, cm, cj)", name, v1.KindNames())
}

// splitKindName accepts "KIND NAME" or "KIND/NAME" in args.
func splitKindName(args []string) (kind, name string, rest []string) {
	if len(args) == 0 {
		return "", "", nil
	}
	if k, n, ok := strings.Cut(args[0], "/"); ok {
		return k, n, args[1:]
	}
	if len(args) > 1 {
		return args[0], args[1], args[2:]
	}
	return args[0], "", nil
}

// ref is how ctl names an object in its output: "service/hello", like kubectl.
func ref(o v1.Object) string {
	return strings.ToLower(o.GetTypeMeta().Kind) + "/" + o.GetMetadata().Name
}

// kindArgs checks a KIND [NAME] argument count with a message that says what is expected.
func kindArgs(verb string, minArgs, maxArgs int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < minArgs {
			return fmt.Errorf("%s needs a kind: one of %s, routes", verb, v1.KindNames())
		}
		if len(args) > maxArgs {
			return fmt.Errorf("%s takes KIND [NAME], got %d arguments", verb, len(args))
		}
		return nil
	}
}
