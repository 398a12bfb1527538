// Package node converges one node's Docker engine to the scheduler's assignments for that node.
// Every agent runs one, for its own node only.
//
// Reconcile(ctx, serviceName) reads the Service (its status.assignments name the replicas this
// node must run, each with a spec hash), lists the containers labelled with the service and this
// node, plans with the pure function plan (create, start again, restart when unhealthy, drain,
// remove) and carries the plan out; then it publishes what it sees to the observed view. It
// never touches a container without Constellation's labels, and nothing is torn down because
// the store cannot be read: only a Service that is really gone (store.ErrNotFound) or no longer
// assigned here loses its containers.
//
// HTTP and TCP health checks are probed by the agent (prober.go) against the published port;
// exec checks are Docker's HEALTHCHECK. Exits and unhealthy replicas are restarted with
// exponential backoff; after CrashLoopThreshold failures in a row the replica is reported with
// reason CrashLoop, its exit code and its last log lines.
//
// Every pass is bounded (Config.ReconcileTimeout) and every Docker call of pkg/docker has its own
// deadline; images are pulled in the background (puller.go: one pull per image, replicas
// reported ImagePulling with progress). While the engine does not answer, a pass still publishes
// the last container list with the health the agent's probes establish without Docker
// (observe.go): Unknown, never the last Ready, where nothing can tell.
//
// Before it creates a container it checks the spec against its own agent's host-access policy
// (pkg/hostaccess, Config.HostAccess): a replica asking for a bind mount, privileged, a host
// namespace or a capability this agent does not allow is not created and is reported with reason
// HostAccessDenied, naming the field and the flag. Every message it publishes is scrubbed of the
// values of the Secrets the Service references (scrub.go, pkg/redact).
//
// It imports api/v1, pkg/store, pkg/observed, pkg/spechash, pkg/docker, pkg/hostaccess,
// pkg/redact and controllers/runtime.
package node
