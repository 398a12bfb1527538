package v1

import (
	"encoding/json"
	"fmt"
	pathpkg "path"
	"strconv"
	"strings"
)

// KindConfig is the kind of Configs: named sets of files (as Swarm configs and Kubernetes
// ConfigMaps) that Services mount with spec.files. Unlike a Secret, a Config's values are
// not secret: ctl prints them and the agent may log their keys and sizes.
const KindConfig = "Config"

// MaxConfigBytes caps a Config's keys and values together (as MaxSecretBytes does a Secret's).
const MaxConfigBytes = 1 << 20

// Config holds files: text under spec.data, bytes under spec.binaryData.
type Config struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta   `json:"metadata"`
	Spec     ConfigSpec   `json:"spec"`
	Status   ConfigStatus `json:"status,omitempty"`
}

// ConfigSpec is the content of a Config. A key is in at most one of Data and BinaryData.
type ConfigSpec struct {
	// Data maps keys to text content. Default none.
	Data map[string]string `json:"data,omitempty"`
	// BinaryData maps keys to bytes, base64 (standard encoding, padded) in JSON. Default none.
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

// ConfigStatus is empty; it exists so every kind has the same shape.
type ConfigStatus struct{}

func (c *Config) GetMetadata() *ObjectMeta { return &c.Metadata }
func (c *Config) DeepCopyObject() Object   { return deepCopy(c) }

// Default fills in apiVersion and kind.
func (c *Config) Default() { defaultMeta(&c.TypeMeta, KindConfig) }

// Value returns the content of key, from data or binaryData.
func (c *ConfigSpec) Value(key string) ([]byte, bool) {
	if v, ok := c.Data[key]; ok {
		return []byte(v), true
	}
	v, ok := c.BinaryData[key]
	return v, ok
}

// Keys returns every key of data and binaryData.
func (c *ConfigSpec) Keys() []string {
	out := make([]string, 0, len(c.Data)+len(c.BinaryData))
	for k := range c.Data {
		out = append(out, k)
	}
	for k := range c.BinaryData {
		out = append(out, k)
	}
	return out
}

// Validate reports every problem in the Config.
func (c *Config) Validate() ErrorList {
	errs := validateMeta(&c.TypeMeta, &c.Metadata, KindConfig)
	sp := path("spec")
	size := 0
	for k, v := range c.Spec.Data {
		if !secretKeyRE.MatchString(k) {
			errs.add(sp.child("data").key(k).String(), "invalid key: use letters, digits, '-', '_' or '.'")
		}
		size += len(k) + len(v)
	}
	for k, v := range c.Spec.BinaryData {
		if !secretKeyRE.MatchString(k) {
			errs.add(sp.child("binaryData").key(k).String(), "invalid key: use letters, digits, '-', '_' or '.'")
		}
		if _, dup := c.Spec.Data[k]; dup {
			errs.add(sp.child("binaryData").key(k).String(), "key is in spec.data too")
		}
		size += len(k) + len(v)
	}
	if size > MaxConfigBytes {
		errs.add(sp.String(), "data and binaryData must be at most %d bytes in all, got %d", MaxConfigBytes, size)
	}
	return errs
}

// FileMount is one entry of spec.files: one key of a Config or a Secret, as a file in the
// container (Compose's configs and secrets, Swarm's config and secret targets).
type FileMount struct {
	// Path is where the file appears in the container: a clean absolute path. Default
	// "/run/secrets/<secret>" for a Secret, "/<config>" for a Config (Compose's defaults).
	Path string `json:"path,omitempty"`
	// Config names the Config the content comes from. Exactly one of config and secret.
	Config string `json:"config,omitempty"`
	// Secret names the Secret the content comes from. Exactly one of config and secret.
	Secret string `json:"secret,omitempty"`
	// Key is the key of the Config or Secret whose value is the file's content. Default "":
	// the object's only key (an object with several keys needs one; until then the replica
	// waits, reason FileSourceNotFound).
	Key string `json:"key,omitempty"`
	// Mode is the file's permission bits. In JSON an octal string ("0440") or a decimal
	// number (288). Default 0444 for a Config, 0400 for a Secret. The file belongs to uid 0,
	// gid 0: a process running as another user reads a Secret file only with a mode that lets
	// it (0444).
	Mode FileMode `json:"mode,omitempty"`
}

// Source returns the kind and name of the object the file comes from.
func (f *FileMount) Source() (kind, name string) {
	if f.Secret != "" {
		return KindSecret, f.Secret
	}
	return KindConfig, f.Config
}

// Default file modes.
const (
	DefaultConfigFileMode FileMode = 0o444
	DefaultSecretFileMode FileMode = 0o400
)

// DefaultSecretDir is where a Secret file goes without a path: /run/secrets/<secret>.
const DefaultSecretDir = "/run/secrets"

// ReasonFileSourceNotFound: a replica waits because the Config or Secret (or its key) one of
// its spec.files names does not exist yet; the message names the object and the key.
const ReasonFileSourceNotFound ConditionReason = "FileSourceNotFound"

// FileMode is a file's permission bits. It is written as an octal string ("0440") and read
// from one or from a JSON number.
type FileMode uint32

// MarshalJSON writes the mode as a 4-digit octal string.
func (m FileMode) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprintf("%04o", uint32(m))) }

// UnmarshalJSON reads an octal string ("0440", "440", "0o440") or a decimal JSON number.
func (m *FileMode) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n uint32
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("file mode: want an octal string like \"0440\" or a number, got %s", b)
		}
		*m = FileMode(n)
		return nil
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return fmt.Errorf("file mode: want an octal string like \"0440\", got %q", s)
	}
	*m = FileMode(n)
	return nil
}

func (m FileMode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// defaultFiles fills in each file's path and mode.
func defaultFiles(files []FileMount) {
	for i := range files {
		f := &files[i]
		if f.Path == "" {
			if f.Secret != "" {
				f.Path = DefaultSecretDir + "/" + f.Secret
			} else if f.Config != "" {
				f.Path = "/" + f.Config
			}
		}
		if f.Mode == 0 {
			if f.Secret != "" {
				f.Mode = DefaultSecretFileMode
			} else {
				f.Mode = DefaultConfigFileMode
			}
		}
	}
}

// validateFiles checks spec.files of a Service (or a Job: containerFS describes the
// container's own mounts). Files are copied into the container's own file system before it
// starts, so a path cannot be under a volume or tmpfs (the copy would land on the volume, on
// the node's disk, or be hidden by the tmpfs) nor can the root file system be read-only.
func validateFiles(sp path, files []FileMount, volumes []VolumeMount, o *ContainerOptions, upstream bool) ErrorList {
	var errs ErrorList
	if len(files) == 0 {
		return nil
	}
	fp := sp.child("files")
	if upstream {
		errs.add(fp.String(), "must be empty when upstreams are set (no container runs)")
	}
	if o != nil && o.ReadOnlyRootFilesystem {
		errs.add(fp.String(), "cannot be used with spec.readOnlyRootFilesystem: files are copied into the container's root file system before it starts (docs/spec.md, \"files\")")
	}
	seen := map[string]int{}
	for i, f := range files {
		ip := fp.index(i)
		switch {
		case f.Config == "" && f.Secret == "":
			errs.add(ip.String(), "must set exactly one of config and secret")
		case f.Config != "" && f.Secret != "":
			errs.add(ip.String(), "must set exactly one of config and secret, got both")
		case f.Config != "" && !IsDNSLabel(f.Config):
			errs.add(ip.child("config").String(), "must name a Config (a DNS label), got %q", f.Config)
		case f.Secret != "" && !IsDNSLabel(f.Secret):
			errs.add(ip.child("secret").String(), "must name a Secret (a DNS label), got %q", f.Secret)
		}
		if f.Key != "" && !secretKeyRE.MatchString(f.Key) {
			errs.add(ip.child("key").String(), "invalid key %q: use letters, digits, '-', '_' or '.'", f.Key)
		}
		p := f.Path
		if p == "" && f.Secret != "" {
			p = DefaultSecretDir + "/" + f.Secret
		} else if p == "" && f.Config != "" {
			p = "/" + f.Config
		}
		switch {
		case p == "":
			errs.add(ip.child("path").String(), "required")
		case !strings.HasPrefix(p, "/"):
			errs.add(ip.child("path").String(), "must be absolute, got %q", p)
		case pathpkg.Clean(p) != p || p == "/":
			errs.add(ip.child("path").String(), "must be a clean absolute path of a file, got %q", p)
		default:
			if j, dup := seen[p]; dup {
				errs.add(ip.child("path").String(), "duplicate of %s", fp.index(j).child("path"))
			}
			seen[p] = i
			for j, v := range volumes {
				if under(p, v.Target) {
					errs.add(ip.child("path").String(), "must not be under %s %q: files are copied into the container's own file system", sp.child("volumes").index(j).child("target"), v.Target)
				}
			}
			if o != nil {
				for j, t := range o.Tmpfs {
					if under(p, t.Target) {
						errs.add(ip.child("path").String(), "must not be under %s %q: the tmpfs would hide the file", sp.child("tmpfs").index(j).child("target"), t.Target)
					}
				}
			}
		}
		if f.Mode > 0o777 {
			errs.add(ip.child("mode").String(), "must be at most 0777, got %s", f.Mode)
		}
	}
	return errs
}

// under reports whether p is dir or inside it.
func under(p, dir string) bool {
	dir = pathpkg.Clean(dir)
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}
