package v1

import (
	"encoding/json"
	"time"
)

// APIVersion is the only apiVersion this package understands.
const APIVersion = "constellation/v1"

// TypeMeta names an object's schema.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the metadata every object carries. The store owns uid, generation,
// resourceVersion, creationTimestamp and deletionTimestamp: values sent by clients for them are
// ignored, except resourceVersion, which turns a write into a compare-and-swap.
type ObjectMeta struct {
	Name              string            `json:"name"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	UID               string            `json:"uid,omitempty"`
	Generation        int64             `json:"generation,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	CreationTimestamp *time.Time        `json:"creationTimestamp,omitempty"`
	DeletionTimestamp *time.Time        `json:"deletionTimestamp,omitempty"`
	Finalizers        []string          `json:"finalizers,omitempty"`
	OwnerReferences   []OwnerReference  `json:"ownerReferences,omitempty"`
}

// OwnerReference points at the object that owns this one.
type OwnerReference struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	UID  string `json:"uid,omitempty"`
}

// ConditionStatus is True, False or Unknown.
type ConditionStatus string

// Condition statuses.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// ConditionType names a condition. Each kind declares its own as typed constants.
type ConditionType string

// ConditionReason is a condition's or a replica's reason: a short CamelCase word that says why
// (ImageNotFound, CrashLoop, ...). Every reason one controller sets and another reads is a typed
// constant of this package, so no two packages match the same string by hand.
type ConditionReason string

// Condition is one observation about an object, as in Kubernetes.
type Condition struct {
	Type               ConditionType   `json:"type"`
	Status             ConditionStatus `json:"status"`
	Reason             ConditionReason `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
	LastTransitionTime time.Time       `json:"lastTransitionTime"`
}

// Duration is a time.Duration written as a Go duration string ("500ms", "2s") in JSON.
type Duration struct {
	time.Duration
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: durationType}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

var durationType = jsonTypeOf(Duration{})

// Object is implemented by every kind in this package.
type Object interface {
	// GetTypeMeta returns the object's apiVersion and kind, for reading and writing.
	GetTypeMeta() *TypeMeta
	// GetMetadata returns the object's metadata, for reading and writing.
	GetMetadata() *ObjectMeta
	// Default fills in the fields the operator left out.
	Default()
	// Validate reports every problem in the object, each with its field path.
	Validate() ErrorList
	// DeepCopyObject returns a copy that shares no memory with the original.
	DeepCopyObject() Object
}

// Conditioned is implemented by kinds whose status carries conditions.
type Conditioned interface {
	Object
	GetConditions() *[]Condition
}

func (t *TypeMeta) GetTypeMeta() *TypeMeta { return t }

func (m *ObjectMeta) GetMetadata() *ObjectMeta { return m }

// FindCondition returns the condition of type t, or nil.
func FindCondition(conds []Condition, t ConditionType) *Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// SetCondition sets c in conds, keeping lastTransitionTime when the status did not change.
// It reports whether anything changed.
func SetCondition(conds *[]Condition, c Condition) bool {
	if old := FindCondition(*conds, c.Type); old != nil {
		if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
			return false
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		*old = c
		return true
	}
	*conds = append(*conds, c)
	return true
}

// ListMeta is the metadata of a list.
type ListMeta struct {
	ResourceVersion string `json:"resourceVersion"`
}

// List is what the API returns for a list of objects of one kind ("ServiceList", ...).
type List struct {
	TypeMeta `json:",inline"`
	Metadata ListMeta          `json:"metadata"`
	Items    []json.RawMessage `json:"items"`
}
