package v1

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
)

// Kind names.
const (
	KindService    = "Service"
	KindDNSRecord  = "DNSRecord"
	KindLease      = "Lease"
	KindReplicaSet = "ReplicaSet"
	KindNode       = "Node"
	KindSecret     = "Secret"
)

// KindInfo describes one kind: its names on the command line and in URLs.
type KindInfo struct {
	Kind     string
	Plural   string
	Singular string
	Short    []string
	// New returns an empty object of the kind with its TypeMeta set.
	New func() Object
}

var kinds = []KindInfo{
	{KindService, "services", "service", []string{"svc"}, func() Object { return &Service{TypeMeta: TypeMeta{APIVersion, KindService}} }},
	{KindDNSRecord, "dnsrecords", "dnsrecord", []string{"dns"}, func() Object { return &DNSRecord{TypeMeta: TypeMeta{APIVersion, KindDNSRecord}} }},
	{KindLease, "leases", "lease", nil, func() Object { return &Lease{TypeMeta: TypeMeta{APIVersion, KindLease}} }},
	{KindReplicaSet, "replicasets", "replicaset", []string{"rs"}, func() Object { return &ReplicaSet{TypeMeta: TypeMeta{APIVersion, KindReplicaSet}} }},
	{KindNode, "nodes", "node", []string{"no"}, func() Object { return &Node{TypeMeta: TypeMeta{APIVersion, KindNode}} }},
	{KindSecret, "secrets", "secret", nil, func() Object { return &Secret{TypeMeta: TypeMeta{APIVersion, KindSecret}} }},
	// Events are user-visible (read by ctl get events and ctl describe): see event.go.
	{KindEvent, "events", "event", []string{"ev"}, func() Object { return &Event{TypeMeta: TypeMeta{APIVersion, KindEvent}} }},
	// Configs, Jobs and CronJobs: see config.go and job.go.
	{KindConfig, "configs", "config", []string{"cm"}, func() Object { return &Config{TypeMeta: TypeMeta{APIVersion, KindConfig}} }},
	{KindJob, "jobs", "job", nil, func() Object { return &Job{TypeMeta: TypeMeta{APIVersion, KindJob}} }},
	{KindCronJob, "cronjobs", "cronjob", []string{"cj"}, func() Object { return &CronJob{TypeMeta: TypeMeta{APIVersion, KindCronJob}} }},
}

// Kinds returns every kind, in a fixed order.
func Kinds() []KindInfo { return append([]KindInfo(nil), kinds...) }

// LookupKind finds a kind by its Kind, plural, singular or short name, case-insensitively.
// It runs for every object the store decodes or applies: one map lookup, no allocation for a
// Kind spelled as its constant.
func LookupKind(name string) (KindInfo, bool) {
	if k, ok := kindIndex.exact[name]; ok {
		return k, true
	}
	k, ok := kindIndex.lower[strings.ToLower(name)]
	return k, ok
}

// kindIndex maps every name of every kind (exact Kind; lowercased Kind, plural, singular and
// short names) to it; the first kind in kinds, then internalKinds, to claim a name keeps it.
var kindIndex = func() (ix struct{ exact, lower map[string]KindInfo }) {
	ix.exact, ix.lower = map[string]KindInfo{}, map[string]KindInfo{}
	claim := func(m map[string]KindInfo, name string, k KindInfo) {
		if _, taken := m[name]; !taken {
			m[name] = k
		}
	}
	for _, k := range append(append([]KindInfo(nil), kinds...), internalKinds...) {
		claim(ix.exact, k.Kind, k)
		claim(ix.lower, strings.ToLower(k.Kind), k)
		claim(ix.lower, k.Plural, k)
		claim(ix.lower, k.Singular, k)
		for _, s := range k.Short {
			claim(ix.lower, s, k)
		}
	}
	return ix
}()

// KindNames lists the accepted plural names, for error messages.
func KindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Plural
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Key identifies an object: its kind and name.
type Key struct {
	Kind string
	Name string
}

func (k Key) String() string {
	if info, ok := LookupKind(k.Kind); ok {
		return info.Plural + "/" + k.Name
	}
	return k.Kind + "/" + k.Name
}

// KeyOf returns the object's key.
func KeyOf(o Object) Key { return Key{Kind: o.GetTypeMeta().Kind, Name: o.GetMetadata().Name} }

// deepCopy copies through JSON, which every type here round-trips; the store hands out fresh
// decodes anyway, so copies are off the hot path.
func deepCopy[T any](in *T) *T {
	if in == nil {
		return nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic("v1: deep copy: " + err.Error()) // every type here marshals; a failure is a bug
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic("v1: deep copy: " + err.Error())
	}
	return out
}

func (s *Service) DeepCopyObject() Object    { return deepCopy(s) }
func (d *DNSRecord) DeepCopyObject() Object  { return deepCopy(d) }
func (l *Lease) DeepCopyObject() Object      { return deepCopy(l) }
func (r *ReplicaSet) DeepCopyObject() Object { return deepCopy(r) }
func (n *Node) DeepCopyObject() Object       { return deepCopy(n) }
func (s *Secret) DeepCopyObject() Object     { return deepCopy(s) }

func (s *Service) GetMetadata() *ObjectMeta    { return &s.Metadata }
func (d *DNSRecord) GetMetadata() *ObjectMeta  { return &d.Metadata }
func (l *Lease) GetMetadata() *ObjectMeta      { return &l.Metadata }
func (r *ReplicaSet) GetMetadata() *ObjectMeta { return &r.Metadata }
func (n *Node) GetMetadata() *ObjectMeta       { return &n.Metadata }
func (s *Secret) GetMetadata() *ObjectMeta     { return &s.Metadata }

// StatusOf returns a pointer to the object's status.
func StatusOf(o Object) any { return fieldAddr(o, "Status") }

func fieldAddr(o Object, name string) any {
	v := reflect.ValueOf(o).Elem().FieldByName(name)
	if !v.IsValid() {
		return nil
	}
	return v.Addr().Interface()
}

var jsonTypeOf = reflect.TypeOf
