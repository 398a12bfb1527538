package compose

import (
	"bytes"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Render writes r as a gofmt-ed `package main` that prints its objects with pkg/spec. Every
// field the mapping sets is written as a pkg/spec option (tests run the program and compare
// its output with r.Objects, so a field the renderer forgets fails them).
func Render(r *Result) ([]byte, error) {
	w := &writer{idents: map[string]bool{}}
	w.line("// Command %s is the Compose project %q converted by `ctl convert` from %s.", goIdent(r.Project), r.Project, strings.Join(r.Sources, ", "))
	w.line("// Apply it with `ctl apply -f DIR`.")
	if len(r.Secrets) > 0 {
		w.line("//")
		w.line("// Secrets to create before applying (values were not copied here):")
		for _, s := range r.Secrets {
			if s.Source != "" {
				w.line("//   - %s key %s (from %s: %s)", s.Secret, s.Key, s.From, s.Source)
			} else {
				w.line("//   - %s key %s (from %s)", s.Secret, s.Key, s.From)
			}
		}
	}
	if len(r.Notes) > 0 {
		w.line("//")
		w.line("// Conversion notes:")
		for _, n := range r.Notes {
			w.line("//   - %s", strings.ReplaceAll(n.String(), "\n", " "))
		}
	}
	w.line("package main")
	w.line("")
	w.line("import (")
	w.line("@IMPORTS@")
	w.line(")")
	w.line("")
	w.line("func main() {")
	w.line("spec.Print(")
	for _, o := range r.Objects {
		switch o := o.(type) {
		case *v1.Service:
			w.service(o)
		case *v1.Config:
			w.config(o)
		default:
			return nil, fmt.Errorf("compose: render: unexpected %T", o)
		}
	}
	w.line(")")
	w.line("}")
	if len(w.consts) > 0 {
		w.line("")
		w.line("// The Configs' contents, as read at convert time.")
		w.line("const (")
		for _, c := range w.consts {
			w.line("%s", c)
		}
		w.line(")")
	}
	imports := []string{`"github.com/constellation-sh/constellation/pkg/spec"`}
	if w.v1 {
		imports = append([]string{`v1 "github.com/constellation-sh/constellation/api/v1"`}, imports...)
	}
	if w.time {
		imports = append([]string{`"time"`, ""}, imports...)
	}
	src := strings.Replace(w.b.String(), "@IMPORTS@", strings.Join(imports, "\n"), 1)
	if _, err := parser.ParseFile(token.NewFileSet(), "main.go", src, parser.AllErrors); err != nil {
		return nil, fmt.Errorf("compose: render: generated code does not parse: %w", err)
	}
	out, err := format.Source([]byte(src))
	if err != nil {
		return nil, fmt.Errorf("compose: render: %w", err)
	}
	return out, nil
}

func goIdent(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
	if s == "" {
		return "stack"
	}
	return s
}

type writer struct {
	b        bytes.Buffer
	v1, time bool
	consts   []string        // "name = literal" lines of the const block after main
	idents   map[string]bool // const names taken
}

// config writes a Config whose content is a const after main (a raw string when it can be).
func (w *writer) config(c *v1.Config) {
	if len(c.Spec.BinaryData) > 0 {
		var kv []string
		for _, k := range sortedKeys(c.Spec.BinaryData) {
			kv = append(kv, fmt.Sprintf("%s: []byte(%s)", q(k), w.constant(c.Metadata.Name, q(string(c.Spec.BinaryData[k])))))
		}
		w.line("spec.BinaryConfig(%s, map[string][]byte{%s}),", q(c.Metadata.Name), strings.Join(kv, ", "))
		return
	}
	var kv []string
	for _, k := range sortedKeys(c.Spec.Data) {
		kv = append(kv, fmt.Sprintf("%s: %s", q(k), w.constant(c.Metadata.Name, goString(c.Spec.Data[k]))))
	}
	w.line("spec.Config(%s, map[string]string{%s}),", q(c.Metadata.Name), strings.Join(kv, ", "))
}

// constant declares lit under a name made from the Config's and returns the name.
func (w *writer) constant(config, lit string) string {
	id := "config"
	for _, part := range strings.Split(config, "-") {
		if part != "" {
			id += strings.ToUpper(part[:1]) + part[1:]
		}
	}
	base := id
	for i := 2; w.idents[id]; i++ {
		id = fmt.Sprintf("%s%d", base, i)
	}
	w.idents[id] = true
	w.consts = append(w.consts, id+" = "+lit)
	return id
}

// goString is s as a Go literal: a raw string when s has no backquote, carriage return or NUL
// (and so reads as the file does), else a quoted one.
func goString(s string) string {
	if s != "" && !strings.ContainsAny(s, "`\r\x00\ufeff") && utf8.ValidString(s) {
		return "`" + s + "`"
	}
	return q(s)
}

func (w *writer) line(format string, args ...any) {
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteByte('\n')
}

func q(s string) string { return strconv.Quote(s) }

func qs(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = q(s)
	}
	return strings.Join(out, ", ")
}

func (w *writer) dur(d time.Duration) string {
	w.time = true
	switch {
	case d == 0:
		return "0"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d * time.Hour", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d * time.Minute", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%d * time.Second", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%d * time.Millisecond", d/time.Millisecond)
	}
	return fmt.Sprintf("time.Duration(%d)", int64(d))
}

func durOf(d *v1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

func kvs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, q(k), q(m[k]))
	}
	return strings.Join(parts, ", ")
}

func (w *writer) service(s *v1.Service) {
	sp := &s.Spec
	var o []string
	add := func(format string, args ...any) { o = append(o, fmt.Sprintf(format, args...)) }
	if sp.Mode == v1.ModeGlobal {
		add("spec.Global()")
	}
	if sp.Replicas != nil {
		add("spec.Replicas(%d)", *sp.Replicas)
	}
	if len(sp.Command) > 0 {
		add("spec.Command(%s)", qs(sp.Command))
	}
	if len(sp.Args) > 0 {
		add("spec.Args(%s)", qs(sp.Args))
	}
	for _, e := range sp.Env {
		if e.SecretRef != nil {
			add("spec.EnvFromSecret(%s, %s, %s)", q(e.Name), q(e.SecretRef.Name), q(e.SecretRef.Key))
		} else {
			add("spec.Env(%s, %s)", q(e.Name), q(e.Value))
		}
	}
	for _, p := range sp.Ports {
		switch {
		case p.AppProtocol != "":
			w.v1 = true
			add("spec.PortSpec(v1.ServicePort{Name: %s, ContainerPort: %d, Protocol: %q, AppProtocol: %s, HostPort: %d})",
				q(p.Name), p.ContainerPort, p.Protocol, q(p.AppProtocol), p.HostPort)
		case p.HostPort > 0 && p.Protocol == v1.ProtocolUDP:
			add("spec.HostUDPPort(%s, %d, %d)", q(p.Name), p.ContainerPort, p.HostPort)
		case p.HostPort > 0:
			add("spec.HostPort(%s, %d, %d)", q(p.Name), p.ContainerPort, p.HostPort)
		case p.Protocol == v1.ProtocolUDP:
			add("spec.UDPPort(%s, %d)", q(p.Name), p.ContainerPort)
		default:
			add("spec.Port(%s, %d)", q(p.Name), p.ContainerPort)
		}
	}
	if hc := sp.HealthCheck; hc != nil {
		iv := w.dur(durOf(hc.Interval))
		switch {
		case hc.Exec != nil:
			add("spec.ExecHealth(%s, %s)", iv, qs(hc.Exec.Command))
		case hc.HTTP != nil:
			add("spec.HTTPHealth(%s, %s, %s)", q(hc.HTTP.Path), q(string(hc.HTTP.Port)), iv)
		case hc.TCP != nil:
			add("spec.TCPHealth(%s, %s)", q(string(hc.TCP.Port)), iv)
		}
		var retries int32
		if hc.Retries != nil {
			retries = *hc.Retries
		}
		if hc.Timeout != nil || hc.Retries != nil || hc.StartPeriod != nil {
			add("spec.HealthTiming(%s, %d, %s)", w.dur(durOf(hc.Timeout)), retries, w.dur(durOf(hc.StartPeriod)))
		}
	}
	if r := sp.Routes; r != nil {
		for _, h := range r.HTTP {
			w.v1 = true
			add("spec.Route(%s)", w.httpRoute(h))
		}
		for _, t := range r.TCP {
			if t.Passthrough {
				w.v1 = true
				add("spec.RouteTCP(v1.TCPRoute{HostSNI: %s, EntryPoint: %s, Port: %s, Passthrough: true})", q(t.HostSNI), q(t.EntryPoint), q(string(t.Port)))
			} else {
				add("spec.TCPRoute(%s, %s, %s)", q(t.HostSNI), q(t.EntryPoint), q(string(t.Port)))
			}
		}
		for _, u := range r.UDP {
			add("spec.UDPRoute(%s, %s)", q(u.EntryPoint), q(string(u.Port)))
		}
	}
	if pl := sp.Placement; pl != nil {
		if len(pl.NodeSelector) > 0 {
			add("spec.NodeSelector(%s)", kvs(pl.NodeSelector))
		}
		if pl.MaxPerNode > 0 {
			add("spec.MaxPerNode(%d)", pl.MaxPerNode)
		}
		if pl.Volumes != "" {
			w.v1 = true
			add("spec.VolumePolicy(%q)", pl.Volumes)
		}
	}
	if len(sp.Networks) > 0 {
		add("spec.Networks(%s)", qs(sp.Networks))
	}
	for _, v := range sp.Volumes {
		if v.ReadOnly {
			add("spec.ReadOnlyVolume(%s, %s)", q(v.Source), q(v.Target))
		} else {
			add("spec.Volume(%s, %s)", q(v.Source), q(v.Target))
		}
	}
	if r := sp.Resources; r != nil {
		add("spec.Resources(%s, %d)", q(r.CPUs), r.MemoryMB)
	}
	if u := sp.Update; u != nil {
		w.v1 = true
		var f []string
		if u.MaxUnavailable != nil {
			f = append(f, fmt.Sprintf("MaxUnavailable: spec.Int32(%d)", *u.MaxUnavailable))
		}
		if u.MaxSurge != nil {
			f = append(f, fmt.Sprintf("MaxSurge: spec.Int32(%d)", *u.MaxSurge))
		}
		if u.Order != "" {
			f = append(f, fmt.Sprintf("Order: %q", u.Order))
		}
		add("spec.Update(v1.UpdateStrategy{%s})", strings.Join(f, ", "))
	}
	if sp.HostAccess {
		add("spec.HostAccess()")
	}
	if sp.Privileged {
		add("spec.Privileged()")
	}
	if sp.HostNetwork {
		add("spec.HostNetwork()")
	}
	if sp.HostPID {
		add("spec.HostPID()")
	}
	if sp.HostIPC {
		add("spec.HostIPC()")
	}
	if len(sp.CapAdd) > 0 {
		add("spec.CapAdd(%s)", qs(sp.CapAdd))
	}
	if len(sp.CapDrop) > 0 {
		add("spec.CapDrop(%s)", qs(sp.CapDrop))
	}
	if owner, ok := sp.NetworkOwner(); ok {
		add("spec.NetworkOf(%s)", q(owner))
	}
	for _, d := range sp.DependsOn {
		if d.Condition == v1.DependencyHealthy {
			add("spec.DependsOnHealthy(%s)", q(d.Service))
		} else {
			add("spec.DependsOn(%s)", q(d.Service))
		}
	}
	co := &sp.ContainerOptions
	if co.User != "" {
		add("spec.User(%s)", q(co.User))
	}
	if co.WorkingDir != "" {
		add("spec.WorkingDir(%s)", q(co.WorkingDir))
	}
	for _, d := range co.Devices {
		add("spec.Device(%s, %s, %s)", q(d.HostPath), q(d.ContainerPath), q(d.Permissions))
	}
	for _, k := range sortedKeys(co.Sysctls) {
		add("spec.Sysctl(%s, %s)", q(k), q(co.Sysctls[k]))
	}
	for _, t := range co.Tmpfs {
		if t.Mode != 0 {
			add("spec.TmpfsMode(%s, %d, 0o%o)", q(t.Target), t.SizeMB, t.Mode)
		} else {
			add("spec.Tmpfs(%s, %d)", q(t.Target), t.SizeMB)
		}
	}
	if co.ReadOnlyRootFilesystem {
		add("spec.ReadOnlyRoot()")
	}
	for _, u := range co.Ulimits {
		add("spec.Ulimit(%s, %d, %d)", q(u.Name), u.Soft, u.Hard)
	}
	for _, h := range co.ExtraHosts {
		add("spec.ExtraHost(%s, %s)", q(h.Host), q(h.IP))
	}
	if co.Init {
		add("spec.Init()")
	}
	if co.StopSignal != "" {
		add("spec.StopSignal(%s)", q(co.StopSignal))
	}
	if co.StopGracePeriod != nil {
		add("spec.StopGracePeriod(%s)", w.dur(co.StopGracePeriod.Duration))
	}
	if co.ShmSizeMB > 0 {
		add("spec.ShmSizeMB(%d)", co.ShmSizeMB)
	}
	if len(co.Labels) > 0 {
		add("spec.ContainerLabels(%s)", kvs(co.Labels))
	}
	if l := co.Logging; l != nil {
		if len(l.Options) > 0 {
			add("spec.Logging(%s, %s)", q(l.Driver), kvs(l.Options))
		} else {
			add("spec.Logging(%s)", q(l.Driver))
		}
	}
	if len(s.Metadata.Labels) > 0 {
		add("spec.Labels(%s)", kvs(s.Metadata.Labels))
	}
	for _, f := range sp.Files {
		switch {
		case f.Secret != "" && f.Mode != 0:
			add("spec.SecretFileMode(%s, %s, %s, 0o%o)", q(f.Path), q(f.Secret), q(f.Key), uint32(f.Mode))
		case f.Secret != "":
			add("spec.SecretFile(%s, %s, %s)", q(f.Path), q(f.Secret), q(f.Key))
		case f.Mode != 0:
			add("spec.ConfigFileMode(%s, %s, %s, 0o%o)", q(f.Path), q(f.Config), q(f.Key), uint32(f.Mode))
		default:
			add("spec.ConfigFile(%s, %s, %s)", q(f.Path), q(f.Config), q(f.Key))
		}
	}
	w.line("spec.Service(%s, %s,", q(s.Metadata.Name), q(sp.Image))
	for _, x := range o {
		w.line("%s,", x)
	}
	w.line("),")
}

func (w *writer) httpRoute(h v1.HTTPRoute) string {
	f := []string{"Host: " + q(h.Host)}
	if h.PathPrefix != "" {
		f = append(f, "PathPrefix: "+q(h.PathPrefix))
	}
	if h.Port != "" {
		f = append(f, "Port: "+q(string(h.Port)))
	}
	if len(h.EntryPoints) > 0 {
		f = append(f, "EntryPoints: []string{"+qs(h.EntryPoints)+"}")
	}
	if h.TLS != nil {
		f = append(f, "TLS: &v1.RouteTLS{CertResolver: "+q(h.TLS.CertResolver)+"}")
	}
	if h.Priority != 0 {
		f = append(f, fmt.Sprintf("Priority: %d", h.Priority))
	}
	if m := h.Middlewares; m != nil {
		var mf []string
		if m.RedirectToHTTPS {
			mf = append(mf, "RedirectToHTTPS: true")
		}
		if m.StripPrefix {
			mf = append(mf, "StripPrefix: true")
		}
		if len(m.Headers) > 0 {
			mf = append(mf, "Headers: map[string]string{"+kvmap(m.Headers)+"}")
		}
		if m.RateLimit != nil {
			mf = append(mf, fmt.Sprintf("RateLimit: &v1.RateLimit{Average: %d, Burst: %d}", m.RateLimit.Average, m.RateLimit.Burst))
		}
		if m.RetryAttempts > 0 {
			mf = append(mf, fmt.Sprintf("RetryAttempts: %d", m.RetryAttempts))
		}
		f = append(f, "Middlewares: &v1.HTTPMiddlewares{"+strings.Join(mf, ", ")+"}")
	}
	return "v1.HTTPRoute{" + strings.Join(f, ", ") + "}"
}

func kvmap(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, q(k)+": "+q(m[k]))
	}
	return strings.Join(parts, ", ")
}
