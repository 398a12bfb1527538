package agent

import (
	"net/http"

	"github.com/constellation-sh/constellation/pkg/ui"
)

// addUIRoutes mounts the status page (/ui/, docs/ui.md) among the API's handlers. Its routes are
// public to the API server: the page checks its sessions itself against the same tokens, and
// reads objects only through its read-only forwarding to the API server.
func (a *Agent) addUIRoutes(handlers map[string]http.Handler, public *[]string) error {
	h, err := ui.New(ui.Config{
		Tokens:        a.apiTokens,
		RequireTokens: a.cfg.API.TokenFile != "" || a.cfg.API.TokenSecret != "",
		API: func() http.Handler {
			if a.api == nil {
				return nil
			}
			return a.api
		},
		Node:    a.cfg.Node.Name,
		Version: Version,
		Logger:  a.log.With("component", "ui"),
	})
	if err != nil {
		return err
	}
	for p, rh := range h.Routes() {
		handlers[p] = rh
		*public = append(*public, p)
	}
	return nil
}
