// Package redis is the ReplicaSet engine for Redis with Sentinel (spec.engine "redis").
//
// It owns the conversation with redis-server and redis-sentinel, nothing else: the controller
// (controllers/replicaset) builds the members and sentinels from Services and writes status.
// Each Reconcile reads every member (ROLE, DBSIZE) and every sentinel (GET-MASTER-ADDR-BY-NAME,
// MASTER, REPLICAS, SENTINELS), decides one step with the pure plan function and carries it out.
//
// Rules it keeps (docs/replicasets.md, "Redis"):
//   - it never picks a master while sentinels monitor the set: it reports the master a Sentinel
//     majority names; only when no sentinel monitors the set (first boot, or all sentinels lost
//     their state) and a majority of them answer does it choose one (a sole master the others
//     follow, else the last recorded primary, else the highest offset; an empty member never
//     wins while another has data) and send REPLICAOF and SENTINEL MONITOR;
//   - members and sentinels are addressed by their mesh names (replica-announce-ip,
//     sentinel announce-ip, resolve-hostnames and announce-hostnames yes);
//   - SENTINEL RESET one sentinel at a time, spaced by Config.ResetInterval; planned moves by
//     SENTINEL FAILOVER (after CLIENT PAUSE WRITE), never a bare REPLICAOF on a healthy set;
//   - PrimaryAgreed only when a Sentinel majority and the member's own ROLE agree.
//
// It imports api/v1, pkg/replicaset and go-redis; never the store or a controller.
package redis
