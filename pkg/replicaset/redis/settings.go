// What the engine applies to members and sentinels, derived from the spec, and its fingerprint
// (a change detector). Pure.

package redis

import (
	"errors"
	"fmt"
	"time"

	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// settings is what the engine applies to members and sentinels, derived from the spec.
type settings struct {
	masterName      string
	quorum          int
	downAfter       time.Duration
	failoverTimeout time.Duration
	minReplicas     int32
	minLag          time.Duration
	password        string
}

func settingsOf(d replicaset.Desired) (settings, error) {
	rs := d.ReplicaSet
	if rs == nil || rs.Spec.Redis == nil {
		return settings{}, errors.New("redis: spec.redis is required")
	}
	r := rs.Spec.Redis
	s := settings{
		masterName: r.MasterName, quorum: int(r.Quorum),
		downAfter: r.EffectiveDownAfter(), failoverTimeout: r.EffectiveFailoverTimeout(),
		minReplicas: r.MinReplicasToWrite, minLag: r.EffectiveMinReplicasMaxLag(),
		password: d.Secrets[SecretPassword],
	}
	if s.masterName == "" {
		s.masterName = rs.Metadata.Name
	}
	if s.quorum <= 0 {
		s.quorum = majority(len(d.Sentinels))
	}
	return s, nil
}

func (s settings) fingerprint() string {
	return fmt.Sprintf("%s|%d|%d|%d|%d|%d|%x", s.masterName, s.quorum, s.downAfter, s.failoverTimeout, s.minReplicas, s.minLag, hashString(s.password))
}

func hashString(s string) uint64 { // FNV-1a: a change detector, not a secret
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
