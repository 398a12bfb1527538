// Package gossiptest holds memberlist transports for tests of pkg/gossip and of whole agents:
// an in-memory Network that can kill nodes, cut links and count packets, and Filter, which wraps
// a real UDP/TCP transport and drops traffic to chosen addresses to simulate a partition.
//
// It imports memberlist only.
package gossiptest
