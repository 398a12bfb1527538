// Package job runs Jobs and CronJobs (docs/jobs.md).
//
// Two halves. The Controller (controller.go, cronjob.go) is cluster-wide and runs only on the
// holder of the controller Lease: it places each Job on a node (status.node) and turns CronJob
// schedules into Jobs on an injected clock, with their concurrency policy and history limits.
// The Runner (runner.go) runs on every node with Docker: it runs the Jobs placed on its node,
// one container per attempt, watches them exit, retries up to spec.backoffLimit, enforces
// spec.activeDeadline and reports the outcome in Job status.
//
// Job containers carry constellation.job, constellation.job-attempt, constellation.node and
// constellation.spec-hash, never constellation.service: the node reconciler
// (controllers/node), which only touches containers with constellation.service, never sees
// them, and the Runner touches only containers carrying constellation.job and its node.
//
// It imports pkg/* and api/v1, and of the controllers only controllers/runtime.
package job

import "encoding/json"

var jsonMarshal = json.Marshal
