package spechash

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Len is the length of a spec hash (Of) in hex characters. A revision hash (Revision) is a
// spec hash, optionally followed by "-" and the digest of the Secret versions it runs with.
const Len = 16

// containerSpec is the subset of ServiceSpec a container is made from. Replicas, routes,
// placement and the update strategy are left out on purpose: changing them must not replace
// running containers. The spec is defaulted first, so that writing a default explicitly does not
// change the hash. Secret values are not part of it, only their references: which version of
// a Secret replicas run with is the revision's business (Revision).
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
	// Network (the namespace owner) is omitted when unset, so older specs keep their hash.
	Network *v1.NetworkSpec `json:"network,omitempty"`
	// HostIPC and the container options (user, devices, tmpfs, ulimits, labels, logging, ...)
	// are omitted when unset, so that specs written before they existed keep their hash.
	// spec.mode and spec.dependsOn are placement, not part of the container. A port's hostPort
	// is part of Ports, omitted when 0.
	HostIPC             bool `json:"hostIPC,omitempty"`
	v1.ContainerOptions `json:",inline"`
	// RestartedAt (ctl rollout restart) is omitted when unset, so older specs keep their hash.
	RestartedAt string `json:"restartedAt,omitempty"`
	// Files (spec.files) are omitted when unset, so older specs keep their hash. The content
	// of the Configs and Secrets they name is the revision's business (Revision), as for env
	// secretRefs.
	Files []v1.FileMount `json:"files,omitempty"`
}

// Of returns the hash of spec's container-defining fields: Len lowercase hex characters.
// spec is not modified.
func Of(spec *v1.ServiceSpec) string {
	svc := &v1.Service{Spec: *spec}
	svc = svc.DeepCopyObject().(*v1.Service)
	svc.Default()
	s := svc.Spec
	for i := range s.Ports {
		// appProtocol is how the mesh proxies the port, not part of the container.
		s.Ports[i].AppProtocol = ""
	}
	for _, e := range s.Env {
		// "rolling" is the default spelled out: the same hash as "".
		if e.SecretRef != nil && e.SecretRef.Restart == v1.SecretRestartRolling {
			e.SecretRef.Restart = ""
		}
	}
	for i := range s.Devices {
		// Defaults spelled out keep the hash.
		if s.Devices[i].ContainerPath == s.Devices[i].HostPath {
			s.Devices[i].ContainerPath = ""
		}
		if s.Devices[i].Permissions == "rwm" {
			s.Devices[i].Permissions = ""
		}
	}
	b, err := json.Marshal(containerSpec{
		Image: s.Image, Command: s.Command, Args: s.Args, Env: s.Env, Ports: s.Ports,
		HealthCheck: s.HealthCheck, Networks: s.Networks, Volumes: s.Volumes, Resources: s.Resources,
		Privileged: s.Privileged, HostNetwork: s.HostNetwork, HostPID: s.HostPID, CapAdd: s.CapAdd, CapDrop: s.CapDrop,
		Network: s.Network, HostIPC: s.HostIPC, ContainerOptions: s.ContainerOptions,
		RestartedAt: restartedAt(s.RestartedAt), Files: s.Files,
	})
	if err != nil {
		// Marshalling plain structs of strings and numbers cannot fail.
		panic("spechash: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:Len]
}

// restartedAt is the hashed form of spec.restartedAt: UTC, so that the same instant written
// with another offset is the same revision.
func restartedAt(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// SecretVersion identifies the version of a Secret a revision runs: its uid (a Secret deleted
// and created again is another one) and a keyed digest of the values of the keys the Service
// reads (DataDigest). Revision hashes are in labels and status, which read tokens see: the
// digest is an HMAC under a cluster key, so it tells nothing about the values, not even for a
// short password one could guess. It changes only when a value read changes: re-sealing a
// Secret under a new data key (which bumps its generation) rolls nothing.
type SecretVersion struct {
	Name string
	// UID and Digest are empty for a Secret that does not exist.
	UID    string
	Digest string
}

// DataDigest is the keyed digest of one value of a Secret (16 hex digits of HMAC-SHA256 over
// the Secret's name, the key and the value).
func DataDigest(hmacKey []byte, secret, key, value string) string {
	m := hmac.New(sha256.New, hmacKey)
	m.Write([]byte(secret + "\x00" + key + "\x00" + value))
	return hex.EncodeToString(m.Sum(nil))[:Len]
}

// RollingSecrets returns the env secretRefs of spec whose Secret's changes roll the Service
// (restart "" or "rolling") and the Secrets of spec.files (which always roll it), grouped by
// Secret name, names sorted. A file without a key reads the Secret's only key: its key is ""
// here, and every key of the Secret counts.
func RollingSecrets(spec *v1.ServiceSpec) (names []string, keys map[string][]string) {
	keys = map[string][]string{}
	add := func(name, key string) {
		if _, ok := keys[name]; !ok {
			names = append(names, name)
		}
		keys[name] = append(keys[name], key)
	}
	for _, e := range spec.Env {
		if r := e.SecretRef; r != nil && r.Rolls() {
			add(r.Name, r.Key)
		}
	}
	for _, f := range spec.Files {
		if f.Secret != "" {
			add(f.Secret, f.Key)
		}
	}
	sort.Strings(names)
	return names, keys
}

// Revision returns the revision hash of spec run with the given versions of the Secrets its
// rolling secretRefs name: Of(spec) when there are none (so a Service without such references
// keeps the hash it always had), else Of(spec) + "-" + a digest of the versions. A new version
// of one of those Secrets is a new revision, which the scheduler rolls out like any other.
func Revision(spec *v1.ServiceSpec, secrets []SecretVersion) string {
	h := Of(spec)
	if len(secrets) == 0 {
		return h
	}
	vs := append([]SecretVersion(nil), secrets...)
	sort.Slice(vs, func(i, j int) bool { return vs[i].Name < vs[j].Name })
	d := sha256.New()
	for _, v := range vs {
		// Names are DNS labels and UIDs hex: neither holds a NUL.
		d.Write([]byte(v.Name + "\x00" + v.UID + "\x00" + v.Digest + "\n"))
	}
	return h + "-" + hex.EncodeToString(d.Sum(nil))[:Len]
}

// SpecPart returns the spec hash a revision hash starts with (the whole of a plain spec hash).
func SpecPart(hash string) string {
	if i := strings.IndexByte(hash, '-'); i >= 0 {
		return hash[:i]
	}
	return hash
}

// Current returns the revision hash svc's replicas must run to count as updated: the
// scheduler's current revision when it is of the current spec, else the spec hash (the
// scheduler has not seen the spec yet).
func Current(svc *v1.Service) string {
	h := Of(&svc.Spec)
	if r := svc.Status.CurrentRevision; r != nil && SpecPart(r.SpecHash) == h {
		return r.SpecHash
	}
	return h
}

// Lookup returns the spec of svc a replica with revision hash hash runs: the current spec, or
// one of the revisions the scheduler keeps in status (so that a node can recreate an old
// replica during an update). Only the spec part of hash counts: the Secret versions of a
// revision are not a spec (a container created for it reads the Secrets as they are now).
func Lookup(svc *v1.Service, hash string) (*v1.ServiceSpec, bool) {
	sp := SpecPart(hash)
	if Of(&svc.Spec) == sp {
		return &svc.Spec, true
	}
	for _, r := range []*v1.ServiceRevision{svc.Status.CurrentRevision, svc.Status.PreviousRevision} {
		if r != nil && SpecPart(r.SpecHash) == sp {
			return &r.Spec, true
		}
	}
	return nil, false
}
