package v1

import "time"

// DNSRecord is a record converged in Cloudflare: a literal, the address of a Lease's holder, or
// one record per Ready node matching a selector.
type DNSRecord struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     DNSRecordSpec   `json:"spec"`
	Status   DNSRecordStatus `json:"status,omitempty"`
}

// RecordType is A, AAAA, CNAME or TXT.
type RecordType string

// Record types.
const (
	RecordA     RecordType = "A"
	RecordAAAA  RecordType = "AAAA"
	RecordCNAME RecordType = "CNAME"
	RecordTXT   RecordType = "TXT"
)

// DNSRecordSpec says what the record should be.
type DNSRecordSpec struct {
	// Zone is the Cloudflare zone name ("example.com"). Required.
	Zone string `json:"zone"`
	// Name is the fully qualified record name, inside Zone. Required.
	Name string     `json:"name"`
	Type RecordType `json:"type"`
	// TTL in seconds; 1 means automatic. Default 60 (Cloudflare's minimum for non-enterprise is 60).
	TTL int `json:"ttl,omitempty"`
	// Proxied routes traffic through Cloudflare. Only for A, AAAA and CNAME.
	Proxied bool `json:"proxied,omitempty"`
	// Exactly one of Content and Target.
	Content string     `json:"content,omitempty"`
	Target  *DNSTarget `json:"target,omitempty"`
}

// DNSTarget derives the record's content from the cluster.
type DNSTarget struct {
	// Lease: the advertise address of the named Lease's holder.
	Lease string `json:"lease,omitempty"`
	// NodeSelector: one record per Ready node carrying these labels.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// DNSRecord condition types.
const (
	DNSSynced ConditionType = "Synced"
)

// DNSRecord condition reasons.
const (
	ReasonSynced        ConditionReason = "Synced"
	ReasonForeignRecord ConditionReason = "ForeignRecord"
	ReasonZoneNotFound  ConditionReason = "ZoneNotFound"
	ReasonAPIError      ConditionReason = "APIError"
	ReasonNoTarget      ConditionReason = "NoTarget"
	ReasonRateLimited   ConditionReason = "RateLimited"
	// ReasonInvalidSpec: the stored spec does not validate (written before a stricter release).
	ReasonInvalidSpec ConditionReason = "InvalidSpec"
)

// DNSRecordStatus is what Cloudflare holds for this record.
type DNSRecordStatus struct {
	ObservedGeneration int64            `json:"observedGeneration,omitempty"`
	Records            []ProviderRecord `json:"records,omitempty"`
	LastSyncTime       *time.Time       `json:"lastSyncTime,omitempty"`
	Conditions         []Condition      `json:"conditions,omitempty"`
}

// ProviderRecord is one record in the provider.
type ProviderRecord struct {
	ID      string `json:"id"`
	Content string `json:"content"`
}

func (d *DNSRecord) GetConditions() *[]Condition { return &d.Status.Conditions }
