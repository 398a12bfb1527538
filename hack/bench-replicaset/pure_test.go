// Table tests for the bench's pure parts: node addresses, replica indexes, the status
// conditions it waits on, the figures it prints, and which acknowledgement ends a failover.

package main

import (
	"reflect"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestIPOfAndIndex(t *testing.T) {
	if got := ipOf(1, 0); got != "127.0.1.1" {
		t.Errorf("ipOf(1, 0) = %q", got)
	}
	if got := ipOf(2, 4); got != "127.0.2.5" {
		t.Errorf("ipOf(2, 4) = %q", got)
	}
	for _, tc := range []struct {
		name string
		want int
	}{{"redis-0", 0}, {"redis-12", 12}, {"my-redis-3", 3}, {"redis-x", 0}} {
		if got := index(tc.name); got != tc.want {
			t.Errorf("index(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestConditions(t *testing.T) {
	rs := func(cs ...v1.Condition) *v1.ReplicaSet {
		r := &v1.ReplicaSet{}
		r.Status.Conditions = cs
		return r
	}
	agreedTrue := v1.Condition{Type: v1.ReplicaSetPrimaryAgreed, Status: v1.ConditionTrue}
	readyFalse := v1.Condition{Type: v1.ReplicaSetReady, Status: v1.ConditionFalse}
	readyTrue := v1.Condition{Type: v1.ReplicaSetReady, Status: v1.ConditionTrue}
	for _, tc := range []struct {
		name          string
		rs            *v1.ReplicaSet
		agreed, ready bool
	}{
		{"none", rs(), false, false},
		{"agreed, not ready", rs(agreedTrue, readyFalse), true, false},
		{"both", rs(readyTrue, agreedTrue), true, true},
	} {
		if got := agreed(tc.rs); got != tc.agreed {
			t.Errorf("%s: agreed = %v", tc.name, got)
		}
		if got := ready(tc.rs); got != tc.ready {
			t.Errorf("%s: ready = %v", tc.name, got)
		}
	}
}

func TestStats(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want []any
	}{
		{[]time.Duration{time.Second}, []any{1.0, 1.0, 1.0}},
		{[]time.Duration{3 * time.Second, time.Second, 2 * time.Second}, []any{1.0, 2.0, 3.0}},
		{[]time.Duration{4 * time.Second, time.Second, 3 * time.Second, 2 * time.Second}, []any{1.0, 3.0, 4.0}},
	} {
		if got := stats(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("stats(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestLastAckAfter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w := &writer{ackAt: []ack{
		{at(1), "redis-0", "k1"}, {at(2), "redis-0", "k2"}, {at(4), "redis-0", "k3"}, {at(6), "redis-1", "k4"}, {at(7), "redis-1", "k5"},
	}}
	for _, tc := range []struct {
		kill   time.Time
		at     time.Time
		member string
	}{
		{at(3), at(6), "redis-1"}, // the old master answered once more after the kill
		{at(5), at(6), "redis-1"}, // the first answer after the kill is the new master's
		{at(6), time.Time{}, ""},  // no change of member after t
		{at(0), at(1), "redis-0"}, // nothing before t: any first answer is a change
		{at(10), time.Time{}, ""}, // nothing after t
	} {
		gotAt, gotMember := w.lastAckAfter(tc.kill)
		if !gotAt.Equal(tc.at) || gotMember != tc.member {
			t.Errorf("lastAckAfter(%v) = %v, %q; want %v, %q", tc.kill.Sub(t0), gotAt, gotMember, tc.at, tc.member)
		}
	}
}
