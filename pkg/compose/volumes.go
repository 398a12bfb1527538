// Volumes, binds and tmpfs of a service (converter.volumes) and the project-relative bind sources.

package compose

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func (c *converter) volumes(sp, svc string, sc types.ServiceConfig, spec *v1.ServiceSpec) {
	targets := map[string]bool{}
	for i, v := range sc.Volumes {
		vp := fmt.Sprintf("%s.volumes[%d]", sp, i)
		target := path.Clean(v.Target)
		if !strings.HasPrefix(target, "/") {
			c.note(vp+".target", Unsupported, "%q is not an absolute path", v.Target)
			continue
		}
		if targets[target] {
			c.note(vp, Unsupported, "duplicate target %q", target)
			continue
		}
		switch v.Type {
		case types.VolumeTypeVolume:
			src := v.Source
			if src == "" {
				src = volumeName(c.names[svc] + "-" + strings.ReplaceAll(strings.Trim(target, "/"), "/", "-"))
				c.note(vp, Changed, "anonymous volume made named volume %q", src)
			} else if tv, ok := c.p.Volumes[src]; ok && tv.Name != "" && !bool(tv.External) && tv.Name != c.p.Name+"_"+src {
				src = tv.Name
			} else if ok && bool(tv.External) && tv.Name != "" {
				src = tv.Name
			}
			src = volumeName(src)
			if v.Volume != nil {
				if v.Volume.NoCopy {
					c.note(vp+".volume.nocopy", Unsupported, "")
				}
				if v.Volume.Subpath != "" {
					c.note(vp+".volume.subpath", Unsupported, "")
				}
			}
			spec.Volumes = append(spec.Volumes, v1.VolumeMount{Source: src, Target: target, ReadOnly: v.ReadOnly})
		case types.VolumeTypeBind:
			src := c.projectRelative(v.Source)
			if strings.HasPrefix(src, "/") {
				src = path.Clean(src)
				spec.Volumes = append(spec.Volumes, v1.VolumeMount{Source: src, Target: target, ReadOnly: v.ReadOnly})
				spec.HostAccess = true
				c.note(vp, Changed, "bind mount of %s is host access: spec.hostAccess set (the agent must allow it: docs/security.md)", src)
			} else if st, ok := c.projectFile(v.Source); ok {
				c.bindFile(vp, c.names[svc], v.Source, src, target, st, v.ReadOnly)
				targets[target] = true
				continue
			} else if _, err := os.Stat(v.Source); err != nil && path.Ext(src) != "" && !strings.HasSuffix(src, "/") {
				c.note(vp, Unsupported, "%s does not exist now: a file would become a Config (put it in the project directory and convert again); left out", src)
				continue
			} else {
				nm := volumeName(c.names[svc] + "-" + strings.ReplaceAll(strings.Trim(path.Clean(strings.TrimPrefix(src, "~")), "./"), "/", "-"))
				if nm == c.names[svc]+"-" || nm == c.names[svc] {
					nm = c.names[svc] + "-data"
				}
				spec.Volumes = append(spec.Volumes, v1.VolumeMount{Source: nm, Target: target, ReadOnly: v.ReadOnly})
				c.note(vp, Changed, "relative bind %s made named volume %q (a cluster has no project directory: copy the files in)", src, nm)
			}
			if v.Bind != nil && (v.Bind.Propagation != "" && v.Bind.Propagation != "rprivate" || v.Bind.SELinux != "") {
				c.note(vp+".bind", Unsupported, "propagation and selinux options")
			}
		case types.VolumeTypeTmpfs:
			t := v1.TmpfsMount{Target: target}
			if v.Tmpfs != nil {
				t.SizeMB = mib(v.Tmpfs.Size)
				t.Mode = v.Tmpfs.Mode
			}
			spec.Tmpfs = append(spec.Tmpfs, t)
		default:
			c.note(vp+".type", Unsupported, "%q", v.Type)
			continue
		}
		if v.Consistency != "" {
			c.note(vp+".consistency", Unsupported, "")
		}
		targets[target] = true
	}
	for i, t := range sc.Tmpfs {
		tp := fmt.Sprintf("%s.tmpfs[%d]", sp, i)
		target, opts, _ := strings.Cut(t, ":")
		m := v1.TmpfsMount{Target: path.Clean(target)}
		if targets[m.Target] || !strings.HasPrefix(m.Target, "/") {
			c.note(tp, Unsupported, "%q: duplicate or relative target", t)
			continue
		}
		for _, o := range strings.Split(opts, ",") {
			k, val, _ := strings.Cut(o, "=")
			switch k {
			case "":
			case "size":
				var b types.UnitBytes
				if n, err := parseBytes(val); err == nil {
					b = types.UnitBytes(n)
					m.SizeMB = mib(b)
				} else {
					c.note(tp, Unsupported, "size %q", val)
				}
			case "mode":
				if n, err := strconv.ParseUint(val, 8, 32); err == nil {
					m.Mode = uint32(n)
				} else {
					c.note(tp, Unsupported, "mode %q", val)
				}
			default:
				c.note(tp, Unsupported, "option %q", k)
			}
		}
		targets[m.Target] = true
		spec.Tmpfs = append(spec.Tmpfs, m)
	}
}

// projectRelative undoes compose-go's path resolution for a bind source inside the project
// directory, so ./data stays ./data.
func (c *converter) projectRelative(src string) string {
	base := c.p.WorkingDir
	if base == "" || !filepath.IsAbs(base) {
		return src
	}
	if rel, err := filepath.Rel(base, src); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		if rel == "." {
			return "./"
		}
		return "./" + filepath.ToSlash(rel)
	}
	return src
}
