package dns

import (
	"fmt"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/events"
)

// eventComponent names the DNS controller in the Events it reports.
const eventComponent = "dns"

// written reports the provider writes of a plan carried out for DNSRecord name (none: no
// Event).
func (c *Controller) written(name string, p Plan) {
	if p.Changes() == 0 {
		return
	}
	c.cfg.Events.Eventf(events.Ref(v1.KindDNSRecord, name), v1.EventNormal, v1.EventDNSWritten, eventComponent, "%s", planSummary(p))
}

// failed reports a provider failure met converging DNSRecord name, when it has a reason (a
// lost lease or a cancelled reconcile is not the record's failure).
func (c *Controller) failed(name string, o providerOutcome) {
	if o.reason == "" {
		return
	}
	c.cfg.Events.Eventf(events.Ref(v1.KindDNSRecord, name), v1.EventWarning, v1.EventDNSFailed, eventComponent, "%s: %s", o.reason, o.message)
}

// planSummary says what a plan wrote: "created A www.example.com 192.0.2.1; deleted ...".
func planSummary(p Plan) string {
	var parts []string
	for _, step := range []struct {
		verb string
		rs   []cloudflare.Record
	}{{"deleted", p.Delete}, {"updated", p.Update}, {"created", p.Create}} {
		for _, r := range step.rs {
			parts = append(parts, fmt.Sprintf("%s %s %s %s", step.verb, r.Type, r.Name, r.Content))
		}
	}
	return strings.Join(parts, "; ")
}
