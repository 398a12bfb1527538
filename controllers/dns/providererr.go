package dns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/store"
)

// The one mapping of Cloudflare errors to outcomes (sync result, condition reason, requeue or
// retry), shared by the DNSRecord reconciler, the per-node records and the zone resync.

// providerOutcome is what a Cloudflare error means for a reconcile: one mapping for the
// DNSRecords and the per-node records.
type providerOutcome struct {
	// result labels constellation_dns_syncs_total ("" when the reconcile was cut short and
	// counts as nothing).
	result string
	// reason and message make the Synced=False condition of a DNSRecord ("" writes none).
	reason  v1.ConditionReason
	message string
	// res is the requeue when the error is not returned.
	res reconcile.Result
	// retry: return the error, so the loop retries with its backoff.
	retry bool
}

// classify maps a Cloudflare error met while converging records in zone.
func (c *Controller) classify(ctx context.Context, zone string, err error) providerOutcome {
	var rl *cloudflare.RateLimitError
	switch {
	case errors.Is(err, ErrNotLeader):
		return providerOutcome{result: "not_leader", res: reconcile.Result{RequeueAfter: c.cfg.Resync}}
	case errors.As(err, &rl):
		return providerOutcome{result: "rate_limited", reason: v1.ReasonRateLimited, message: err.Error(),
			res: reconcile.Result{RequeueAfter: max(rl.RetryAfter, time.Second)}}
	case errors.Is(err, cloudflare.ErrZoneNotFound):
		if f, ok := c.p.(interface{ ForgetZone(string) }); ok {
			f.ForgetZone(zone)
		}
		return providerOutcome{result: "error", reason: v1.ReasonZoneNotFound, message: fmt.Sprintf("zone %q not found with this token", zone),
			res: reconcile.Result{RequeueAfter: c.cfg.Resync}}
	case errors.Is(err, cloudflare.ErrRecordConflict):
		// A record appeared between our list and our write: list again soon.
		return providerOutcome{result: "foreign", reason: v1.ReasonForeignRecord, message: err.Error(),
			res: reconcile.Result{RequeueAfter: c.cfg.ConflictRequeue}}
	case errors.Is(err, cloudflare.ErrAuth):
		// Retrying sooner will not make the token valid: pace it at the resync.
		return providerOutcome{result: "error", reason: v1.ReasonAPIError, message: err.Error(),
			res: reconcile.Result{RequeueAfter: c.cfg.Resync}}
	case ctx.Err() != nil:
		return providerOutcome{retry: true}
	}
	return providerOutcome{result: "error", reason: v1.ReasonAPIError, message: err.Error(), retry: true}
}

// providerFailed turns a Cloudflare error met converging rec into its condition and a requeue.
func (c *Controller) providerFailed(ctx context.Context, rec *v1.DNSRecord, err error) (reconcile.Result, error) {
	o := c.classify(ctx, rec.Spec.Zone, err)
	if o.result != "" {
		c.syncs.WithLabelValues("record", o.result).Inc()
	}
	c.failed(rec.Metadata.Name, o)
	if o.retry {
		if o.reason != "" {
			if _, serr := c.writeStatus(ctx, rec, nil, v1.ConditionFalse, o.reason, o.message, false, reconcile.Result{}); serr != nil {
				c.log.Warn("write status", "dnsrecord", rec.Metadata.Name, "err", serr)
			}
		}
		return reconcile.Result{}, fmt.Errorf("dnsrecords/%s: %w", rec.Metadata.Name, err)
	}
	if o.reason == "" {
		return o.res, nil
	}
	return c.writeStatus(ctx, rec, nil, v1.ConditionFalse, o.reason, o.message, false, o.res)
}

// storeError: a conflict is a short requeue, anything else an error.
func (c *Controller) storeError(err error) (reconcile.Result, error) {
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return reconcile.Result{RequeueAfter: c.cfg.ConflictRequeue}, nil
	}
	return reconcile.Result{}, err
}
