package spechash

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Len is the length of a hash in hex characters.
const Len = 16

// containerSpec is the subset of ServiceSpec a container is made from. Replicas, routes,
// placement and the update strategy are left out on purpose: changing them must not replace
// running containers. The spec is defaulted first, so that writing a default explicitly does not
// change the hash. Secret values are not part of it (only their references are): rotating a
// Secret does not restart containers.
type containerSpec struct {
	Image       string           `json:"image"`
	Command     []string         `json:"command,omitempty"`
	Args        []string         `json:"args,omitempty"`
	Env         []v1.EnvVar      `json:"env,omitempty"`
	Ports       []v1.ServicePort `json:"ports,omitempty"`
	HealthCheck *v1.HealthCheck  `json:"healthCheck,omitempty"`
	Networks    []string         `json:"networks,omitempty"`
	Volumes     []v1.VolumeMount `json:"volumes,omitempty"`
	Resources   *v1.Resources    `json:"resources,omitempty"`
	// Host access options; omitted when unset, so that specs written before they existed keep
	// their hash. spec.hostAccess itself is only the permission, not part of the container.
	Privileged  bool     `json:"privileged,omitempty"`
	HostNetwork bool     `json:"hostNetwork,omitempty"`
	HostPID     bool     `json:"hostPID,omitempty"`
	CapAdd      []string `json:"capAdd,omitempty"`
	CapDrop     []string `json:"capDrop,omitempty"`
}

// Of returns the hash of spec's container-defining fields: Len lowercase hex characters.
// spec is not modified.
func Of(spec *v1.ServiceSpec) string {
	svc := &v1.Service{Spec: *spec}
	svc = svc.DeepCopyObject().(*v1.Service)
	svc.Default()
	s := svc.Spec
	b, err := json.Marshal(containerSpec{
		Image: s.Image, Command: s.Command, Args: s.Args, Env: s.Env, Ports: s.Ports,
		HealthCheck: s.HealthCheck, Networks: s.Networks, Volumes: s.Volumes, Resources: s.Resources,
		Privileged: s.Privileged, HostNetwork: s.HostNetwork, HostPID: s.HostPID, CapAdd: s.CapAdd, CapDrop: s.CapDrop,
	})
	if err != nil {
		// Marshalling plain structs of strings and numbers cannot fail.
		panic("spechash: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:Len]
}

// OfService is Of(&svc.Spec).
func OfService(svc *v1.Service) string { return Of(&svc.Spec) }

// Lookup returns the spec of svc whose hash is hash: the current spec, or one of the revisions
// the scheduler keeps in status (so that a node can recreate an old replica during an update).
func Lookup(svc *v1.Service, hash string) (*v1.ServiceSpec, bool) {
	if Of(&svc.Spec) == hash {
		return &svc.Spec, true
	}
	for _, r := range []*v1.ServiceRevision{svc.Status.CurrentRevision, svc.Status.PreviousRevision} {
		if r != nil && r.SpecHash == hash {
			return &r.Spec, true
		}
	}
	return nil, false
}
