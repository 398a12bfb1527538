package raftstore

import (
	"testing"

	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

func TestConformanceOneNode(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return newCluster(t, 1, nil).store(0)
	})
}

// The three-node suite talks to a follower, so every write is forwarded to the leader and
// every read goes through ReadIndex on another member.
func TestConformanceThreeNodes(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		c := newCluster(t, 3, nil)
		return c.store((c.leader() + 1) % 3)
	})
}
