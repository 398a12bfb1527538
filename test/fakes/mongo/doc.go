// Package mongo is a wire-level fake of mongod replica set members, enough of them for a
// controller that initiates and reconfigures a replica set: the real go.mongodb.org/mongo-driver/v2
// connects to it over TCP. It speaks OP_MSG (with the optional CRC-32C checksum) and the legacy
// OP_QUERY/OP_REPLY handshake the driver opens every connection with, and answers hello/isMaster,
// ping, buildInfo, replSetInitiate, replSetGetStatus, replSetGetConfig, replSetReconfig,
// replSetStepDown and endSessions.
//
// Several Members share one simulated Set: configs propagate between members that can reach
// each other (as heartbeats carry them), a config is committed once a majority of its voting
// members hold it, and an election makes the highest-priority healthy voter that sees a majority
// primary (priority takeover included). Tests stop, restart and partition members.
//
// What each reply is modelled on is cited next to it: mongod's own command code
// (mongodb/mongo src/mongo/db/repl/repl_set_commands.cpp) and the MongoDB manual pages for
// hello, replSetInitiate, replSetReconfig, replSetGetStatus and the replica set configuration.
// Error codes and messages are mongod's (NotYetInitialized 94, AlreadyInitialized 23,
// InvalidReplicaSetConfig 93, NodeNotFound 74, NewReplicaSetConfigurationIncompatible 103,
// NotWritablePrimary 10107, ConfigurationInProgress 109, CurrentConfigNotCommittedYet 308,
// MaxTimeMSExpired 50, CommandNotFound 59). It is a simulation: there is no data, no oplog, no
// initial sync, no authentication and no streaming (awaitable) hello; docs/replicasets.md lists
// what must still be tried against a real mongod.
//
// It imports nothing of ours and must not: it is the outside world.
package mongo
