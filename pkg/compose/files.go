package compose

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/types"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Compose's secrets, configs and binds of single files become spec.files entries
// (docs/convert.md): a config's content, and a bound file's, is read at convert time into a
// Config object; a secret stays a reference to a Secret the operator creates, its value never
// read nor written.

// composeFileMode is Compose's default mode for secrets and configs (world-readable),
// written out for secrets because a Constellation Secret file defaults to 0400 (root only).
const composeFileMode = 0o444

var keyBad = regexp.MustCompile(`[^-._a-zA-Z0-9]+`)

// objectKey makes a Compose name or file name a Config or Secret key.
func objectKey(n string) string {
	n = keyBad.ReplaceAllString(n, "-")
	if len(n) > 253 {
		n = n[:253]
	}
	return n
}

// fileSource is what a service's file reference resolved to: the object and key the file
// reads, and, for a Config this conversion writes, the object itself.
type fileSource struct {
	name, key string
	config    *v1.Config // nil: a Secret, or an external Config
	ok        bool
}

// objectName is the object a top-level secret or config becomes: its own name when the file
// gave one (or it is external), else its key in the file, as a DNS label.
func (c *converter) objectName(key string, top types.FileObjectConfig) string {
	n := key
	if top.Name != "" && (bool(top.External) || top.Name != c.p.Name+"_"+key) {
		n = top.Name
	}
	return dnsName(n)
}

// topConfig maps configs.NAME to a Config (once; services share it).
func (c *converter) topConfig(n string) fileSource {
	if s, ok := c.configSrc[n]; ok {
		return s
	}
	s := c.resolveConfig(n)
	c.configSrc[n] = s
	return s
}

func (c *converter) resolveConfig(n string) fileSource {
	top := types.FileObjectConfig(c.p.Configs[n])
	tp := "configs." + n
	name := c.objectName(n, top)
	if name == "" {
		c.note(tp, Unsupported, "cannot be made a Config name (a DNS label)")
		return fileSource{}
	}
	if bool(top.External) {
		c.note(tp, Changed, "external: Config %s must exist before the Services start (its only key is read)", name)
		return fileSource{name: name, ok: true}
	}
	key := objectKey(n)
	var content []byte
	switch {
	case top.File != "":
		abs := top.File
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(c.p.WorkingDir, abs)
		}
		b, err := os.ReadFile(abs)
		if err != nil {
			c.note(tp+".file", Unsupported, "cannot read %s: %v", c.projectRelative(abs), err)
			return fileSource{}
		}
		content = b
		c.note(tp, Changed, "content of %s read now into Config %s key %s (convert again after changing the file)", c.projectRelative(abs), name, key)
	case top.Environment != "":
		v, ok := c.p.Environment[top.Environment]
		if !ok {
			c.note(tp+".environment", Unsupported, "$%s is not set (environment or .env)", top.Environment)
			return fileSource{}
		}
		content = []byte(v)
		c.note(tp, Changed, "value of $%s read now into Config %s key %s", top.Environment, name, key)
	default:
		content = []byte(top.Content) // possibly empty: an empty file is a file
	}
	cfg, ok := c.newConfig(tp, name, key, content)
	if !ok {
		return fileSource{}
	}
	return fileSource{name: name, key: key, config: cfg, ok: true}
}

// newConfig builds a one-key Config, text if the content is UTF-8, else binaryData.
func (c *converter) newConfig(p, name, key string, content []byte) (*v1.Config, bool) {
	if len(key)+len(content) > v1.MaxConfigBytes {
		c.note(p, Unsupported, "%d bytes: a Config holds at most %d", len(content), v1.MaxConfigBytes)
		return nil, false
	}
	cfg := &v1.Config{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindConfig}}
	cfg.Metadata.Name = name
	if utf8.Valid(content) {
		cfg.Spec.Data = map[string]string{key: string(content)}
	} else {
		cfg.Spec.BinaryData = map[string][]byte{key: content}
	}
	return cfg, true
}

// topSecret maps secrets.NAME to a Secret by reference (once): the operator creates it.
func (c *converter) topSecret(n string) fileSource {
	if s, ok := c.secretSrc[n]; ok {
		return s
	}
	top := types.FileObjectConfig(c.p.Secrets[n])
	tp := "secrets." + n
	name := c.objectName(n, top)
	var s fileSource
	switch {
	case name == "":
		c.note(tp, Unsupported, "cannot be made a Secret name (a DNS label)")
	case bool(top.External):
		c.note(tp, Changed, "external: Secret %s must exist before the Services start (its only key is read)", name)
		s = fileSource{name: name, ok: true}
	default:
		key := objectKey(n)
		from := "its value"
		switch {
		case top.File != "":
			from = "the content of " + c.projectRelative(top.File)
		case top.Environment != "":
			from = "the value of $" + top.Environment
		}
		c.res.Secrets = append(c.res.Secrets, SecretNeed{Secret: name, Key: key, From: tp, Source: from})
		c.note(tp, Changed, "a Secret by reference: create Secret %s key %s with %s before applying (the value is not written)", name, key, from)
		s = fileSource{name: name, key: key, ok: true}
	}
	c.secretSrc[n] = s
	return s
}

// fileRef plans a service's secrets[i] or configs[i] entry.
func (c *converter) fileRef(fp, kind string, r types.FileReferenceConfig) {
	var src fileSource
	var p string
	var mode v1.FileMode
	if kind == v1.KindSecret {
		src = c.topSecret(r.Source)
		p, mode = v1.DefaultSecretDir+"/", composeFileMode
	} else {
		src = c.topConfig(r.Source)
		p = "/"
	}
	if !src.ok {
		c.note(fp, Unsupported, "%s %s was not mapped (above): left out", kind, r.Source)
		return
	}
	switch {
	case r.Target == "":
		p += r.Source
	case path.IsAbs(r.Target):
		p = r.Target
	default:
		p += r.Target
	}
	if r.Mode != nil {
		mode = v1.FileMode(*r.Mode)
		if mode > 0o777 {
			c.note(fp+".mode", Unsupported, "%04o: only permission bits (0777); using %04o", uint32(mode), uint32(mode&0o777))
			mode &= 0o777
		}
	}
	f := v1.FileMount{Path: path.Clean(p), Key: src.key, Mode: mode}
	if kind == v1.KindSecret {
		f.Secret = src.name
	} else {
		f.Config = src.name
	}
	if !c.addFile(fp, f, src.config) {
		return
	}
	if (r.UID != "" && r.UID != "0") || (r.GID != "" && r.GID != "0") {
		eff := mode
		if eff == 0 {
			eff = v1.DefaultConfigFileMode
		}
		if eff&0o004 != 0 {
			c.note(fp, Unsupported, "uid/gid: files belong to uid 0, gid 0 (mode %04o lets every user read it)", uint32(eff))
		} else {
			c.note(fp, Unsupported, "uid/gid: files belong to uid 0, gid 0: with mode %04o a process running as another user cannot read it", uint32(eff))
		}
	}
}

// bindFile plans the bind of a regular file from the project directory as a Config of the
// file's content (read now) and a spec.files entry. abs is the file on disk, rel how the
// Compose file names it.
func (c *converter) bindFile(vp, svc, abs, rel, target string, st os.FileInfo, readOnly bool) {
	base := path.Base(rel)
	name := dnsName(svc + "-" + base)
	key := objectKey(base)
	b, err := os.ReadFile(abs)
	if err != nil {
		c.note(vp, Unsupported, "bind of the file %s: cannot read it: %v", rel, err)
		return
	}
	cfg, ok := c.newConfig(vp, name, key, b)
	if !ok {
		return
	}
	// A script keeps its execute bits; nothing is writable through the copy.
	mode := v1.FileMode(composeFileMode)
	if st.Mode().Perm()&0o111 != 0 {
		mode = 0o555
	}
	f := v1.FileMount{Path: target, Config: name, Key: key}
	if mode != v1.DefaultConfigFileMode {
		f.Mode = mode
	}
	if !c.addFile(vp, f, cfg) {
		return
	}
	msg := fmt.Sprintf("bind of a file became Config %s key %s at %s, mode %04o (content read now: convert again after changing %s)",
		name, key, target, uint32(mode), rel)
	if !readOnly {
		msg += "; the container gets a copy: its writes are not kept"
	}
	c.note(vp, Changed, "%s", msg)
}

// fileMounts records the service's mount targets (volumes that are not file binds, tmpfs),
// which a file may not be under, before any file is planned.
func (c *converter) fileMounts(sc types.ServiceConfig) {
	c.mounts, c.filePaths = nil, map[string]string{}
	for _, v := range sc.Volumes {
		if v.Type == types.VolumeTypeBind {
			if _, ok := c.projectFile(v.Source); ok {
				continue
			}
		}
		if path.IsAbs(v.Target) {
			c.mounts = append(c.mounts, path.Clean(v.Target))
		}
	}
	for _, t := range sc.Tmpfs {
		target, _, _ := strings.Cut(t, ":")
		if path.IsAbs(target) {
			c.mounts = append(c.mounts, path.Clean(target))
		}
	}
}

// projectFile says whether a bind source is a regular file inside the project directory.
func (c *converter) projectFile(src string) (os.FileInfo, bool) {
	if strings.HasPrefix(c.projectRelative(src), "/") {
		return nil, false
	}
	st, err := os.Stat(src)
	if err != nil || !st.Mode().IsRegular() {
		return nil, false
	}
	return st, true
}

// addFile adds f to spec.files, refusing (with a note) a path under a volume or tmpfs or
// taken by another file, and registers the Config it reads (nil: a Secret or an external
// Config).
func (c *converter) addFile(from string, f v1.FileMount, cfg *v1.Config) bool {
	if other, dup := c.filePaths[f.Path]; dup {
		c.note(from, Unsupported, "path %s is already %s's: left out", f.Path, other)
		return false
	}
	for _, m := range c.mounts {
		if underDir(f.Path, m) {
			c.note(from, Unsupported, "path %s is under the mount %s: files are copied into the container's own file system (docs/spec.md \"files\"): left out", f.Path, m)
			return false
		}
	}
	if cfg != nil && !c.addConfig(from, cfg) {
		return false
	}
	c.filePaths[f.Path] = from
	c.spec.Files = append(c.spec.Files, f)
	return true
}

// readOnlyFiles drops a read-only root file system that files cannot be copied into.
func (c *converter) readOnlyFiles(sp string, spec *v1.ServiceSpec) {
	if len(spec.Files) > 0 && spec.ReadOnlyRootFilesystem {
		spec.ReadOnlyRootFilesystem = false
		c.note(sp+".read_only", Unsupported, "with secrets, configs or file binds: files are copied into the root file system before start, so it stays writable")
	}
}

func underDir(p, dir string) bool {
	dir = path.Clean(dir)
	return p == dir || dir == "/" || len(p) > len(dir) && p[:len(dir)] == dir && p[len(dir)] == '/'
}

// addConfig registers cfg (once per name). Two sources that make the same name with different
// content cannot both be written: the second is refused with a note.
func (c *converter) addConfig(from string, cfg *v1.Config) bool {
	old, ok := c.configs[cfg.Metadata.Name]
	if !ok {
		c.configs[cfg.Metadata.Name] = cfg
		return true
	}
	if old == cfg || sameConfig(old, cfg) {
		return true
	}
	c.note(from, Unsupported, "Config %s is already made from other content: left out", cfg.Metadata.Name)
	return false
}

func sameConfig(a, b *v1.Config) bool {
	if len(a.Spec.Data) != len(b.Spec.Data) || len(a.Spec.BinaryData) != len(b.Spec.BinaryData) {
		return false
	}
	for k, v := range a.Spec.Data {
		if w, ok := b.Spec.Data[k]; !ok || w != v {
			return false
		}
	}
	for k, v := range a.Spec.BinaryData {
		if w, ok := b.Spec.BinaryData[k]; !ok || string(w) != string(v) {
			return false
		}
	}
	return true
}

// configObjects returns the Configs in name order.
func (c *converter) configObjects() []v1.Object {
	names := make([]string, 0, len(c.configs))
	for n := range c.configs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]v1.Object, 0, len(names))
	for _, n := range names {
		out = append(out, c.configs[n])
	}
	return out
}
