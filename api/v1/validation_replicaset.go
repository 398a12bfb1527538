package v1

import (
	"strings"
	"time"
)

// Validate reports every problem in the ReplicaSet.
func (r *ReplicaSet) Validate() ErrorList {
	errs := validateMeta(&r.TypeMeta, &r.Metadata, KindReplicaSet)
	sp := path("spec")
	s := &r.Spec
	if s.Engine != EngineMongo && s.Engine != EngineRedis {
		errs.add(sp.child("engine").String(), "must be mongo or redis, got %q", s.Engine)
	}
	if len(s.Members) == 0 {
		errs.add(sp.child("members").String(), "at least one member Service is required")
	}
	members := map[string]bool{}
	for i, m := range s.Members {
		if !IsDNSLabel(m) {
			errs.add(sp.child("members").index(i).String(), "must name a Service, got %q", m)
		}
		if members[m] {
			errs.add(sp.child("members").index(i).String(), "duplicate member %q", m)
		}
		members[m] = true
	}
	if s.Engine == EngineMongo {
		if s.Mongo == nil {
			errs.add(sp.child("mongo").String(), "required when engine is mongo")
		} else {
			mp := sp.child("mongo")
			if s.Mongo.ReplSetName == "" || strings.ContainsAny(s.Mongo.ReplSetName, " /\\.\"$") {
				errs.add(mp.child("replSetName").String(), "required, without spaces, '/', '\\', '.', '\"' or '$', got %q", s.Mongo.ReplSetName)
			}
			for name, p := range s.Mongo.Priorities {
				if !members[name] {
					errs.add(mp.child("priorities").key(name).String(), "is not a member")
				}
				if p < 0 || p > 1000 {
					errs.add(mp.child("priorities").key(name).String(), "must be 0-1000, got %g", p)
				}
			}
		}
	}
	if s.Engine == EngineRedis {
		if s.Redis == nil {
			errs.add(sp.child("redis").String(), "required when engine is redis")
		} else {
			rp := sp.child("redis")
			if s.Redis.MasterName == "" || strings.ContainsAny(s.Redis.MasterName, " \t\n") {
				errs.add(rp.child("masterName").String(), "required, without spaces, got %q", s.Redis.MasterName)
			}
			if !IsDNSLabel(s.Redis.Sentinel) {
				errs.add(rp.child("sentinel").String(), "must name the sentinel Service, got %q", s.Redis.Sentinel)
			}
			if s.Redis.Quorum < 0 {
				errs.add(rp.child("quorum").String(), "must not be negative, got %d", s.Redis.Quorum)
			}
			validateDuration(&errs, rp.child("downAfter"), s.Redis.DownAfter, 100*time.Millisecond)
			validateDuration(&errs, rp.child("failoverTimeout"), s.Redis.FailoverTimeout, time.Second)
			validateDuration(&errs, rp.child("minReplicasMaxLag"), s.Redis.MinReplicasMaxLag, time.Second)
			if s.Redis.MinReplicasToWrite < 0 {
				errs.add(rp.child("minReplicasToWrite").String(), "must not be negative, got %d", s.Redis.MinReplicasToWrite)
			}
			if s.Redis.SentinelPort < 0 || s.Redis.SentinelPort > 65535 {
				errs.add(rp.child("sentinelPort").String(), "must be 1-65535, got %d", s.Redis.SentinelPort)
			}
			if s.Redis.Sentinel != "" && members[s.Redis.Sentinel] {
				errs.add(rp.child("sentinel").String(), "must not be a member Service, got %q", s.Redis.Sentinel)
			}
			if ps := s.Redis.PasswordSecret; ps != nil && !IsDNSLabel(ps.Name) {
				errs.add(rp.child("passwordSecret").child("name").String(), "must name a Secret, got %q", ps.Name)
			}
		}
	}
	if s.Engine == EngineMongo && s.Redis != nil {
		errs.add(sp.child("redis").String(), "must be empty when engine is mongo")
	}
	if s.Engine == EngineRedis && s.Mongo != nil {
		errs.add(sp.child("mongo").String(), "must be empty when engine is redis")
	}
	return errs
}
