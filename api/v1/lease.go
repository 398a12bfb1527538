package v1

import "time"

// Lease is a lock with expiry, as Kubernetes' coordination Lease. The system uses "controller"
// (the one active scheduler, status and DNS controller) and "lb" (the load-balancer leader).
type Lease struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     LeaseSpec   `json:"spec"`
	Status   LeaseStatus `json:"status,omitempty"`
}

// Well-known lease names.
const (
	LeaseController = "controller"
	LeaseLB         = "lb"
)

// LeaseSpec is the lease's current holder and timing.
type LeaseSpec struct {
	HolderIdentity       string     `json:"holderIdentity,omitempty"`
	LeaseDurationSeconds int32      `json:"leaseDurationSeconds,omitempty"`
	AcquireTime          *time.Time `json:"acquireTime,omitempty"`
	RenewTime            *time.Time `json:"renewTime,omitempty"`
	LeaseTransitions     int32      `json:"leaseTransitions,omitempty"`
}

// LeaseStatus is empty; it exists so every kind has the same shape.
type LeaseStatus struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
}
