package compose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Options says how to load the Compose files.
type Options struct {
	// Env is the environment interpolation reads (KEY=VALUE), before the .env file; default none
	// (ctl passes os.Environ()).
	Env []string
	// Profiles to enable (Compose's --profile); default none: only services without a profile.
	Profiles []string
	// WorkingDir is the project directory relative paths (.env, env_file, extends, include) are
	// read from; default the first file's directory.
	WorkingDir string
	// ProjectName; default the working directory's name, as Compose does.
	ProjectName string
}

// Level says whether a Note is a gap (Unsupported: --strict fails) or a change to know about.
type Level string

const (
	// Unsupported: the field was not mapped.
	Unsupported Level = "not supported"
	// Changed: the field was mapped, differently than Compose would run it (a Secret reference, a
	// relative bind made a named volume).
	Changed Level = "changed"
)

// Note is one field the conversion did not map as written, with its Compose path
// ("services.web.ulimits.nproc").
type Note struct {
	Path    string
	Level   Level
	Message string
}

func (n Note) String() string {
	if n.Message == "" {
		return n.Path + ": " + string(n.Level)
	}
	return n.Path + ": " + string(n.Level) + ": " + n.Message
}

// SecretNeed is a Secret key the converted spec references and the operator must create.
// From is the Compose path; Source, when set, says what holds the value in the Compose project
// ("the content of ./db_password.txt", "the value of $TOKEN").
type SecretNeed struct{ Secret, Key, From, Source string }

// Result is a converted project.
type Result struct {
	Project  string
	Sources  []string
	Objects  []v1.Object
	Notes    []Note
	Secrets  []SecretNeed
	Unmapped int // Notes with Level Unsupported
}

// loaderLog serialises loads: compose-go warns through logrus's global logger, which Load
// points at itself for the duration of a load.
var loaderLog sync.Mutex

type warnHook struct{ msgs []string }

func (h *warnHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.WarnLevel, logrus.ErrorLevel}
}
func (h *warnHook) Fire(e *logrus.Entry) error {
	h.msgs = append(h.msgs, e.Message)
	return nil
}

// Load reads the Compose files with compose-go as `docker compose` does. The loader's warnings
// (a variable that is not set) are returned, not logged.
func Load(ctx context.Context, files []string, o Options) (p *types.Project, warnings []string, err error) {
	// compose-go v2.16.2 panics on some malformed files (ulimits with a null hard limit, found by
	// FuzzConvert): make that an error naming the file, not a crash.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("compose: %s: the loader failed on this file (compose-go: %v)", strings.Join(files, ", "), r)
		}
	}()
	if len(files) == 0 {
		return nil, nil, errors.New("compose: no files")
	}
	abs := make([]string, len(files))
	for i, f := range files {
		a, err := filepath.Abs(f)
		if err != nil {
			return nil, nil, fmt.Errorf("compose: %w", err)
		}
		abs[i] = a
		if err := checkAnchors(a); err != nil {
			return nil, nil, err
		}
	}
	wd := o.WorkingDir
	if wd == "" {
		wd = filepath.Dir(abs[0])
	}
	wd, err = filepath.Abs(wd)
	if err != nil {
		return nil, nil, fmt.Errorf("compose: %w", err)
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(wd),
		cli.WithEnv(o.Env),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles(o.Profiles),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		// Paths resolve against the project directory (env_file, extends, include need it);
		// a bind source inside it is made relative again when mapped (a cluster has no project
		// directory, so it becomes a named volume).
		cli.WithResolvedPaths(true),
	}
	if o.ProjectName != "" {
		opts = append(opts, cli.WithName(o.ProjectName))
	}
	loaderLog.Lock()
	defer loaderLog.Unlock()
	std := logrus.StandardLogger()
	hook := &warnHook{}
	oldOut, oldHooks := std.Out, std.ReplaceHooks(logrus.LevelHooks{})
	std.SetOutput(io.Discard)
	std.AddHook(hook)
	defer func() {
		std.SetOutput(oldOut)
		std.ReplaceHooks(oldHooks)
	}()
	po, err := cli.NewProjectOptions(abs, opts...)
	if err != nil {
		return nil, hook.msgs, fmt.Errorf("compose: %w", err)
	}
	p, err = po.LoadProject(ctx)
	if err != nil {
		return nil, hook.msgs, fmt.Errorf("compose: %w", err)
	}
	return p, hook.msgs, nil
}

// Convert loads files and maps them.
func Convert(ctx context.Context, files []string, o Options) (*Result, error) {
	p, warnings, err := Load(ctx, files, o)
	if err != nil {
		return nil, err
	}
	r, err := FromProject(p)
	if err != nil {
		return nil, err
	}
	var ws []Note
	for _, w := range dedupe(warnings) {
		ws = append(ws, Note{Path: "(loader)", Level: Changed, Message: w})
	}
	r.Notes = append(ws, r.Notes...)
	for _, f := range files {
		r.Sources = append(r.Sources, filepath.Base(f))
	}
	return r, nil
}

// FromProject maps a loaded project to Services. It fails only when the result would not
// validate (a name that cannot be made a DNS label, two services mapping to one name); every
// field it cannot map is a Note.
func FromProject(p *types.Project) (*Result, error) {
	c := &converter{p: p, res: &Result{Project: p.Name}, names: map[string]string{},
		configSrc: map[string]fileSource{}, secretSrc: map[string]fileSource{}, configs: map[string]*v1.Config{}}
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	taken := map[string]string{}
	for _, n := range names {
		dn := dnsName(n)
		if dn == "" {
			return nil, fmt.Errorf("services.%s: cannot be made a Service name (a DNS label)", n)
		}
		if o, dup := taken[dn]; dup {
			return nil, fmt.Errorf("services.%s: maps to Service %q, as services.%s does", n, dn, o)
		}
		taken[dn] = n
		c.names[n] = dn
	}
	c.projectLevel()
	var errs []error
	var svcs []v1.Object
	for _, n := range names {
		// The written spec says only what Compose said and leaves defaults to the server;
		// validate a defaulted copy, as the server will.
		s := c.service(n, p.Services[n])
		d := clone(s)
		d.Default()
		if err := d.Validate().ToAggregate("services", s.Metadata.Name); err != nil {
			errs = append(errs, fmt.Errorf("services.%s: the mapped Service is invalid: %w", n, err))
		}
		svcs = append(svcs, s)
	}
	// Configs first: the Services read them.
	for _, o := range c.configObjects() {
		if err := o.Validate().ToAggregate("configs", o.GetMetadata().Name); err != nil {
			errs = append(errs, fmt.Errorf("the mapped Config is invalid: %w", err))
		}
		c.res.Objects = append(c.res.Objects, o)
	}
	c.res.Objects = append(c.res.Objects, svcs...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cyc := v1.DependencyCycles(services(c.res.Objects)); len(cyc) > 0 {
		for n, e := range cyc {
			errs = append(errs, fmt.Errorf("services.%s.depends_on: %s", n, e.Message))
		}
		return nil, errors.Join(errs...)
	}
	for _, nt := range c.res.Notes {
		if nt.Level == Unsupported {
			c.res.Unmapped++
		}
	}
	return c.res, nil
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func services(objs []v1.Object) []*v1.Service {
	out := make([]*v1.Service, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*v1.Service); ok {
			out = append(out, s)
		}
	}
	return out
}

type converter struct {
	p     *types.Project
	res   *Result
	names map[string]string // compose service name -> Service name
	// secretVals holds the values of the keys planned in PROJECT-env, only to tell a shared
	// credential from a clash; they are never written.
	secretVals map[string]string
	// configSrc and secretSrc hold what each top-level config and secret a service read
	// mapped to; configs the Config objects to write, by name.
	configSrc, secretSrc map[string]fileSource
	configs              map[string]*v1.Config
	// spec is the Service being converted; mounts its volume and tmpfs targets, which a file
	// may not be under, and filePaths its files' paths (to the Compose path that set them).
	spec      *v1.ServiceSpec
	mounts    []string
	filePaths map[string]string
	// handled holds the top-level fields of the service being converted that the mapping
	// consumed (and reported on itself); leftover reports the rest.
	handled map[string]bool
}

func (c *converter) note(path string, l Level, format string, args ...any) {
	c.res.Notes = append(c.res.Notes, Note{Path: path, Level: l, Message: fmt.Sprintf(format, args...)})
}

func clone(s *v1.Service) *v1.Service {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a Service always marshals
	}
	var out v1.Service
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

// The shapes api/v1 validates, checked here so that a name it would refuse is a note instead.
var (
	dnsBad       = regexp.MustCompile(`[^a-z0-9-]+`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	portNameRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dockerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
)

// dnsName makes a Compose name a DNS label: lower case, '_' and '.' become '-'.
func dnsName(n string) string {
	n = dnsBad.ReplaceAllString(strings.ToLower(n), "-")
	n = strings.Trim(n, "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}

var volBad = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func volumeName(n string) string {
	n = volBad.ReplaceAllString(n, "-")
	return strings.Trim(n, "-._")
}

func (c *converter) projectLevel() {
	p := c.p
	for _, n := range sortedKeys(p.Networks) {
		nw := p.Networks[n]
		pp := "networks." + n
		if nw.Driver != "" && nw.Driver != "bridge" && nw.Driver != "overlay" {
			c.note(pp+".driver", Unsupported, "driver %q: the agent creates bridge networks on each node", nw.Driver)
		}
		if len(nw.DriverOpts) > 0 {
			c.note(pp+".driver_opts", Unsupported, "")
		}
		if len(nw.Ipam.Config) > 0 || nw.Ipam.Driver != "" {
			c.note(pp+".ipam", Unsupported, "addresses come from the mesh (--mesh.cidr)")
		}
		if nw.Internal {
			c.note(pp+".internal", Unsupported, "")
		}
		if len(nw.Labels) > 0 {
			c.note(pp+".labels", Unsupported, "networks carry the agent's labels only")
		}
		if nw.EnableIPv6 != nil && *nw.EnableIPv6 {
			c.note(pp+".enable_ipv6", Unsupported, "")
		}
	}
	for _, n := range sortedKeys(p.Volumes) {
		v := p.Volumes[n]
		pp := "volumes." + n
		if v.Driver != "" && v.Driver != "local" {
			c.note(pp+".driver", Unsupported, "driver %q: volumes are local to a node (docs/volumes.md)", v.Driver)
		}
		if len(v.DriverOpts) > 0 {
			c.note(pp+".driver_opts", Unsupported, "")
		}
		if len(v.Labels) > 0 {
			c.note(pp+".labels", Unsupported, "volumes carry the agent's labels only")
		}
	}
	usedSecrets, usedConfigs := map[string]bool{}, map[string]bool{}
	for _, sc := range p.Services {
		for _, r := range sc.Secrets {
			usedSecrets[r.Source] = true
		}
		for _, r := range sc.Configs {
			usedConfigs[r.Source] = true
		}
	}
	for _, n := range sortedKeys(p.Secrets) {
		c.fileObjectFields("secrets."+n, types.FileObjectConfig(p.Secrets[n]))
		if usedSecrets[n] {
			c.topSecret(n)
		} else {
			c.note("secrets."+n, Changed, "not used by any converted service: left out")
		}
	}
	for _, n := range sortedKeys(p.Configs) {
		c.fileObjectFields("configs."+n, types.FileObjectConfig(p.Configs[n]))
		if usedConfigs[n] {
			c.topConfig(n)
		} else {
			c.note("configs."+n, Changed, "not used by any converted service: left out")
		}
	}
	if len(p.Models) > 0 {
		c.note("models", Unsupported, "")
	}
	if len(p.Jobs) > 0 {
		c.note("jobs", Unsupported, "needs Job and CronJob")
	}
}

// fileObjectFields notes what a top-level secret or config says that a Config or Secret has no
// room for.
func (c *converter) fileObjectFields(p string, o types.FileObjectConfig) {
	if len(o.Labels) > 0 {
		c.note(p+".labels", Unsupported, "")
	}
	if o.Driver != "" {
		c.note(p+".driver", Unsupported, "%q", o.Driver)
	}
	if len(o.DriverOpts) > 0 {
		c.note(p+".driver_opts", Unsupported, "")
	}
	if o.TemplateDriver != "" {
		c.note(p+".template_driver", Unsupported, "%q: the content is copied as it is", o.TemplateDriver)
	}
}

// secretName says whether an environment variable holds a credential by its name (tokens split
// on '_': PASSWORD, SECRET, TOKEN, KEY, ...; not *_FILE, which names a file) or its value (a URL
// with a password in it).
var (
	secretWords = map[string]bool{"PASSWORD": true, "PASSWD": true, "PASS": true, "PWD": true, "SECRET": true,
		"TOKEN": true, "KEY": true, "APIKEY": true, "CREDENTIALS": true, "PRIVATE": true, "SALT": true,
		"SECRETKEY": true, "AUTH": true}
	notSecretLast = map[string]bool{"FILE": true, "PATH": true, "DIR": true, "ID": true, "NAME": true, "USER": true,
		"USERNAME": true, "LENGTH": true, "HEADER": true, "URL": true, "ALGORITHM": true}
	urlPassword = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://[^/:@\s]*:[^@/\s]+@`)
)

func looksSecret(name, value string) bool {
	if value == "" {
		return false
	}
	if urlPassword.MatchString(value) {
		return true
	}
	toks := strings.Split(strings.ToUpper(name), "_")
	if notSecretLast[toks[len(toks)-1]] {
		return false
	}
	for _, t := range toks {
		if secretWords[t] {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func durPtr(d *types.Duration) *v1.Duration {
	if d == nil {
		return nil
	}
	return &v1.Duration{Duration: time.Duration(*d)}
}

func mib(b types.UnitBytes) int64 { return int64(math.Ceil(float64(b) / (1 << 20))) }

// service maps one Compose service. raw (its JSON) is what is left to report: each mapped
// field is marked handled, and whatever remains non-empty is a Note.
func (c *converter) service(name string, sc types.ServiceConfig) *v1.Service {
	sp := "services." + name
	c.handled = map[string]bool{}
	h := func(fields ...string) {
		for _, f := range fields {
			c.handled[f] = true
		}
	}
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = c.names[name]
	spec := &s.Spec
	c.spec = spec
	c.fileMounts(sc)
	h("name", "container_name", "restart", "profiles", "extends", "links")
	if len(sc.Links) > 0 {
		c.note(sp+".links", Changed, "Services resolve by name on the mesh; a link's alias does not (its dependency is kept)")
	}
	if sc.ContainerName != "" {
		c.note(sp+".container_name", Changed, "replicas are named %s-<i> (and resolve as %s on the mesh)", s.Metadata.Name, s.Metadata.Name)
	}
	switch sc.Restart {
	case "", "always", "unless-stopped", "on-failure":
	default:
		c.note(sp+".restart", Unsupported, "%q: Constellation restarts every container that stops", sc.Restart)
	}

	// image
	h("image", "build")
	spec.Image = sc.Image
	if sc.Build != nil {
		if sc.Image == "" {
			spec.Image = s.Metadata.Name + ":latest"
		}
		c.note(sp+".build", Unsupported, "build the image and push it where the nodes pull from; using image %q", spec.Image)
	}
	if spec.Image == "" {
		spec.Image = s.Metadata.Name + ":latest"
		c.note(sp+".image", Unsupported, "no image; using %q", spec.Image)
	}

	// command and entrypoint: Compose's entrypoint is Docker's Entrypoint (spec.command), its
	// command is Docker's Cmd (spec.args).
	h("command", "entrypoint")
	if len(sc.Entrypoint) > 0 {
		spec.Command = append([]string(nil), sc.Entrypoint...)
	}
	if len(sc.Command) > 0 {
		spec.Args = append([]string(nil), sc.Command...)
	}

	// environment (env_file is already merged in by the loader)
	h("environment", "env_file")
	for _, k := range sortedKeys(sc.Environment) {
		v := sc.Environment[k]
		ep := sp + ".environment." + k
		if v == nil {
			c.note(ep, Unsupported, "no value (not set in the environment or .env): left out")
			continue
		}
		if !envNameRE.MatchString(k) {
			c.note(ep, Unsupported, "not a C identifier")
			continue
		}
		if looksSecret(k, *v) {
			sec, key, first := c.secretKey(s.Metadata.Name, k, *v)
			spec.Env = append(spec.Env, v1.EnvVar{Name: k, SecretRef: &v1.SecretKeyRef{Name: sec, Key: key}})
			if first {
				c.res.Secrets = append(c.res.Secrets, SecretNeed{Secret: sec, Key: key, From: ep})
			}
			c.note(ep, Changed, "looks secret: now secretRef %s/%s; create that Secret before applying (the value is not written)", sec, key)
			continue
		}
		spec.Env = append(spec.Env, v1.EnvVar{Name: k, Value: *v})
	}

	// ports and expose
	h("ports", "expose")
	seenPort := map[string]bool{}
	for i, p := range sc.Ports {
		pp := fmt.Sprintf("%s.ports[%d]", sp, i)
		proto := v1.ProtocolTCP
		switch p.Protocol {
		case "", "tcp":
		case "udp":
			proto = v1.ProtocolUDP
		default:
			c.note(pp+".protocol", Unsupported, "%q", p.Protocol)
			continue
		}
		key := fmt.Sprintf("%d/%s", p.Target, proto)
		if seenPort[key] {
			c.note(pp, Unsupported, "container port %s published twice: only the first is kept", key)
			continue
		}
		seenPort[key] = true
		port := v1.ServicePort{ContainerPort: int32(p.Target), Protocol: proto, Name: portName(p.Name, p.Target, proto)}
		if p.Published != "" {
			hp, err := strconv.Atoi(p.Published)
			if err != nil || hp < 1 || hp > 65535 {
				c.note(pp+".published", Unsupported, "%q: a host port must be one number", p.Published)
			} else {
				port.HostPort = int32(hp)
			}
		}
		if p.HostIP != "" && p.HostIP != "0.0.0.0" && p.HostIP != "::" {
			c.note(pp+".host_ip", Unsupported, "host ports are published on every address of the node")
		}
		if p.Mode == "host" {
			c.note(pp+".mode", Changed, "host: hostPort is always published on the node that runs the replica")
		}
		if p.AppProtocol == "http" {
			port.AppProtocol = v1.AppProtocolHTTP
		} else if p.AppProtocol != "" {
			c.note(pp+".app_protocol", Unsupported, "%q (only http)", p.AppProtocol)
		}
		spec.Ports = append(spec.Ports, port)
	}
	for i, e := range sc.Expose {
		ep := fmt.Sprintf("%s.expose[%d]", sp, i)
		num, proto, _ := strings.Cut(e, "/")
		pr := v1.ProtocolTCP
		if proto == "udp" {
			pr = v1.ProtocolUDP
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 {
			c.note(ep, Unsupported, "%q: only single ports", e)
			continue
		}
		key := fmt.Sprintf("%d/%s", n, pr)
		if seenPort[key] {
			continue
		}
		seenPort[key] = true
		spec.Ports = append(spec.Ports, v1.ServicePort{ContainerPort: int32(n), Protocol: pr, Name: portName("", uint32(n), pr)})
	}

	c.healthcheck(sp, sc.HealthCheck, spec)
	h("healthcheck")

	c.volumes(sp, name, sc, spec)
	h("volumes", "tmpfs")

	c.network(sp, sc, spec)
	h("network_mode", "networks", "pid", "ipc", "privileged", "cap_add", "cap_drop", "devices")

	// depends_on
	h("depends_on")
	for _, d := range sortedKeys(sc.DependsOn) {
		dep := sc.DependsOn[d]
		dp := sp + ".depends_on." + d
		target, ok := c.names[d]
		if !ok {
			c.note(dp, Unsupported, "not a service of this project (profile off?)")
			continue
		}
		cond := v1.DependencyStarted
		switch dep.Condition {
		case "", types.ServiceConditionStarted:
		case types.ServiceConditionHealthy:
			cond = v1.DependencyHealthy
		case types.ServiceConditionCompletedSuccessfully:
			c.note(dp+".condition", Unsupported, "service_completed_successfully needs Jobs: waits for started instead")
		default:
			c.note(dp+".condition", Unsupported, "%q", dep.Condition)
		}
		if dep.Restart && !linked(sc.Links, d) {
			c.note(dp+".restart", Unsupported, "a dependent is not restarted with its dependency")
		}
		if !dep.Required {
			c.note(dp+".required", Changed, "false: a dependency is always required")
		}
		spec.DependsOn = append(spec.DependsOn, v1.Dependency{Service: target, Condition: cond})
	}

	c.deploy(sp, sc, spec)
	h("deploy", "scale")

	c.containerOptions(sp, sc, spec)
	h("user", "working_dir", "sysctls", "read_only", "ulimits", "extra_hosts", "init",
		"stop_signal", "stop_grace_period", "shm_size", "logging", "mem_limit", "cpus")

	// labels: Traefik's become routes, the rest stay container labels.
	h("labels")
	labels := map[string]string{}
	for k, v := range sc.Labels {
		labels[k] = v
	}
	if sc.Deploy != nil {
		for k, v := range sc.Deploy.Labels {
			labels[k] = v
		}
	}
	rest := c.traefik(sp, labels, spec)
	for _, k := range sortedKeys(rest) {
		if strings.HasPrefix(strings.ToLower(k), v1.ReservedLabelPrefix) {
			c.note(sp+".labels."+k, Unsupported, "the prefix %q is the agent's", v1.ReservedLabelPrefix)
			continue
		}
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		spec.Labels[k] = rest[k]
	}

	for i, r := range sc.Secrets {
		c.fileRef(fmt.Sprintf("%s.secrets[%d]", sp, i), v1.KindSecret, types.FileReferenceConfig(r))
	}
	for i, r := range sc.Configs {
		c.fileRef(fmt.Sprintf("%s.configs[%d]", sp, i), v1.KindConfig, types.FileReferenceConfig(r))
	}
	h("secrets", "configs")
	c.readOnlyFiles(sp, spec)

	c.leftover(sp, sc)
	return s
}

// secretKey places a secret-looking variable in the project's Secret (PROJECT-env): key VAR, so
// services that share a credential under one name share the key; a second, different value
// under the same name gets the key SERVICE.VAR. first says the key is new.
func (c *converter) secretKey(svc, name, value string) (secret, key string, first bool) {
	secret = dnsName(c.p.Name)
	if len(secret) > 59 {
		secret = strings.TrimRight(secret[:59], "-")
	}
	if secret == "" {
		secret = "compose"
	}
	secret += "-env"
	if c.secretVals == nil {
		c.secretVals = map[string]string{}
	}
	for _, k := range []string{name, svc + "." + name} {
		if old, ok := c.secretVals[k]; ok {
			if old == value {
				return secret, k, false
			}
			continue
		}
		c.secretVals[k] = value
		return secret, k, true
	}
	return secret, svc + "." + name, false // unreachable: SERVICE.VAR is unique per service
}

// linked says whether links name dep (compose-go turns a link into depends_on with restart).
func linked(links []string, dep string) bool {
	for _, l := range links {
		if n, _, _ := strings.Cut(l, ":"); n == dep {
			return true
		}
	}
	return false
}

// portName names a port: Compose's name when it is a valid port name, else tcp-N / udp-N.
func portName(n string, target uint32, proto v1.Protocol) string {
	if n != "" && len(n) <= 15 && portNameRE.MatchString(n) &&
		strings.ContainsAny(n, "abcdefghijklmnopqrstuvwxyz") {
		return n
	}
	return fmt.Sprintf("%s-%d", proto, target)
}

// Compose's healthcheck defaults (interval 30s, timeout 30s, retries 3), written out because
// Constellation's differ.
const (
	composeInterval = 30 * time.Second
	composeTimeout  = 30 * time.Second
	composeRetries  = 3
)

func (c *converter) healthcheck(sp string, hc *types.HealthCheckConfig, spec *v1.ServiceSpec) {
	if hc == nil || hc.Disable || len(hc.Test) == 0 {
		return
	}
	hp := sp + ".healthcheck"
	var cmd []string
	switch hc.Test[0] {
	case "NONE":
		return
	case "CMD":
		cmd = append([]string(nil), hc.Test[1:]...)
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		c.note(hp+".test", Unsupported, "must start with CMD, CMD-SHELL or NONE, got %q", hc.Test[0])
		return
	}
	if len(cmd) == 0 {
		c.note(hp+".test", Unsupported, "empty command")
		return
	}
	out := &v1.HealthCheck{Exec: &v1.ExecHealthCheck{Command: cmd}}
	interval, timeout := composeInterval, composeTimeout
	if hc.Interval != nil && *hc.Interval > 0 {
		interval = time.Duration(*hc.Interval)
	}
	if interval < 100*time.Millisecond {
		c.note(hp+".interval", Changed, "%s raised to 100ms (the minimum)", interval)
		interval = 100 * time.Millisecond
	}
	if hc.Timeout != nil && *hc.Timeout > 0 {
		timeout = time.Duration(*hc.Timeout)
	}
	if timeout > interval {
		if hc.Timeout != nil {
			c.note(hp+".timeout", Changed, "%s lowered to the interval %s (a check may not outlast its interval)", timeout, interval)
		}
		timeout = interval
	}
	retries := int32(composeRetries)
	if hc.Retries != nil {
		switch r := *hc.Retries; {
		case r < 1:
			retries = 1
		case r > 100:
			c.note(hp+".retries", Changed, "%d lowered to 100", r)
			retries = 100
		default:
			retries = int32(r)
		}
	}
	out.Interval = &v1.Duration{Duration: interval}
	out.Timeout = &v1.Duration{Duration: timeout}
	out.Retries = &retries
	if hc.StartPeriod != nil && *hc.StartPeriod > 0 {
		out.StartPeriod = durPtr(hc.StartPeriod)
	}
	if hc.StartInterval != nil {
		c.note(hp+".start_interval", Unsupported, "checks run every interval from the start")
	}
	spec.HealthCheck = out
}

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

func parseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for suf, m := range map[string]int64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30} {
		if strings.HasSuffix(s, suf) || strings.HasSuffix(s, suf+"b") {
			s = strings.TrimSuffix(strings.TrimSuffix(s, "b"), suf)
			mult = m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

func (c *converter) network(sp string, sc types.ServiceConfig, spec *v1.ServiceSpec) {
	switch nm := sc.NetworkMode; {
	case nm == "" || nm == "bridge" || nm == "default":
	case nm == "host":
		spec.HostNetwork, spec.HostAccess = true, true
		c.note(sp+".network_mode", Changed, "host is host access: spec.hostAccess set")
	case strings.HasPrefix(nm, "service:"):
		owner := strings.TrimPrefix(nm, "service:")
		if t, ok := c.names[owner]; ok {
			spec.Network = &v1.NetworkSpec{Mode: v1.NetworkModeServicePrefix + t}
		} else {
			c.note(sp+".network_mode", Unsupported, "%q: no such service", nm)
		}
	default:
		c.note(sp+".network_mode", Unsupported, "%q", nm)
	}
	if spec.Network != nil || spec.HostNetwork {
		// the namespace owner's networks apply; published ports are the owner's too
		for i := range spec.Ports {
			if spec.Ports[i].HostPort != 0 {
				c.note(fmt.Sprintf("%s.ports[%d]", sp, i), Unsupported, "a host port with network_mode: publish it on the namespace owner")
				spec.Ports[i].HostPort = 0
			}
		}
	}
	for _, n := range sortedKeys(sc.Networks) {
		np := sp + ".networks." + n
		cfg := sc.Networks[n]
		if n == "default" {
			continue
		}
		if spec.Network != nil || spec.HostNetwork {
			c.note(np, Unsupported, "networks with network_mode")
			continue
		}
		real := n
		if nw, ok := c.p.Networks[n]; ok && nw.Name != "" && bool(nw.External) {
			real = nw.Name
		}
		if real == "host" || real == "none" || !dockerNameRE.MatchString(real) {
			c.note(np, Unsupported, "network name %q", real)
			continue
		}
		spec.Networks = append(spec.Networks, real)
		if cfg != nil {
			if len(cfg.Aliases) > 0 {
				c.note(np+".aliases", Unsupported, "a Service resolves by its name on the mesh")
			}
			if cfg.Ipv4Address != "" || cfg.Ipv6Address != "" {
				c.note(np+".ipv4_address", Unsupported, "addresses come from the mesh")
			}
		}
	}
	switch sc.Pid {
	case "":
	case "host":
		spec.HostPID, spec.HostAccess = true, true
		c.note(sp+".pid", Changed, "host is host access: spec.hostAccess set")
	default:
		c.note(sp+".pid", Unsupported, "%q", sc.Pid)
	}
	switch sc.Ipc {
	case "", "private":
	case "host":
		spec.HostIPC, spec.HostAccess = true, true
		c.note(sp+".ipc", Changed, "host is host access: spec.hostAccess set")
	default:
		c.note(sp+".ipc", Unsupported, "%q", sc.Ipc)
	}
	if sc.Privileged {
		spec.Privileged, spec.HostAccess = true, true
		c.note(sp+".privileged", Changed, "privileged is host access: spec.hostAccess set (the agent must allow it)")
	}
	for _, cp := range sc.CapAdd {
		n := v1.NormalizeCapability(cp)
		spec.CapAdd = append(spec.CapAdd, n)
		if n == "ALL" || !v1.IsDefaultCapability(n) {
			spec.HostAccess = true
		}
	}
	for _, cp := range sc.CapDrop {
		spec.CapDrop = append(spec.CapDrop, v1.NormalizeCapability(cp))
	}
	for i, d := range sc.Devices {
		dp := fmt.Sprintf("%s.devices[%d]", sp, i)
		if !strings.HasPrefix(d.Source, "/") {
			c.note(dp, Unsupported, "%q: CDI devices", d.Source)
			continue
		}
		dev := v1.Device{HostPath: path.Clean(d.Source)}
		if d.Target != "" && d.Target != d.Source {
			dev.ContainerPath = path.Clean(d.Target)
		}
		if d.Permissions != "" && d.Permissions != "rwm" {
			dev.Permissions = d.Permissions
		}
		spec.Devices = append(spec.Devices, dev)
		spec.HostAccess = true
	}
}

var nodeLabelRE = regexp.MustCompile(`^node\.labels\.([A-Za-z0-9_./-]+)\s*==\s*(\S+)$`)

func (c *converter) deploy(sp string, sc types.ServiceConfig, spec *v1.ServiceSpec) {
	if sc.Scale != nil {
		n := int32(*sc.Scale)
		spec.Replicas = &n
	}
	d := sc.Deploy
	if d == nil {
		return
	}
	dp := sp + ".deploy"
	switch d.Mode {
	case "", "replicated":
	case "global":
		spec.Mode = v1.ModeGlobal
	default:
		c.note(dp+".mode", Unsupported, "%q needs Jobs", d.Mode)
	}
	if d.Replicas != nil {
		if spec.Mode == v1.ModeGlobal {
			c.note(dp+".replicas", Unsupported, "with mode global")
		} else {
			n := int32(*d.Replicas)
			spec.Replicas = &n
		}
	}
	if spec.Mode == v1.ModeGlobal {
		spec.Replicas = nil
	}
	if l := d.Resources.Limits; l != nil {
		r := &v1.Resources{}
		if l.NanoCPUs > 0 {
			r.CPUs = strconv.FormatFloat(float64(l.NanoCPUs), 'f', -1, 32)
		}
		if l.MemoryBytes > 0 {
			r.MemoryMB = max(mib(l.MemoryBytes), 6)
		}
		if l.Pids > 0 {
			c.note(dp+".resources.limits.pids", Unsupported, "")
		}
		if len(l.Devices) > 0 {
			c.note(dp+".resources.limits.devices", Unsupported, "")
		}
		if r.CPUs != "" || r.MemoryMB > 0 {
			spec.Resources = r
		}
	}
	if rv := d.Resources.Reservations; rv != nil {
		if len(rv.Devices) > 0 {
			c.note(dp+".resources.reservations.devices", Unsupported, "GPU reservations: use devices (e.g. /dev/dri) with host access")
		}
		if rv.NanoCPUs > 0 || rv.MemoryBytes > 0 {
			c.note(dp+".resources.reservations", Unsupported, "scheduling does not reserve resources")
		}
	}
	for i, con := range d.Placement.Constraints {
		cp := fmt.Sprintf("%s.placement.constraints[%d]", dp, i)
		m := nodeLabelRE.FindStringSubmatch(strings.TrimSpace(con))
		if m == nil {
			c.note(cp, Unsupported, "%q: only node.labels.KEY == VALUE", con)
			continue
		}
		if spec.Placement == nil {
			spec.Placement = &v1.Placement{}
		}
		if spec.Placement.NodeSelector == nil {
			spec.Placement.NodeSelector = map[string]string{}
		}
		spec.Placement.NodeSelector[m[1]] = m[2]
	}
	if d.Placement.MaxReplicas > 0 {
		if spec.Placement == nil {
			spec.Placement = &v1.Placement{}
		}
		spec.Placement.MaxPerNode = int32(d.Placement.MaxReplicas)
	}
	if len(d.Placement.Preferences) > 0 {
		c.note(dp+".placement.preferences", Unsupported, "replicas are spread over nodes already")
	}
	if u := d.UpdateConfig; u != nil {
		us := &v1.UpdateStrategy{}
		if u.Parallelism != nil && *u.Parallelism > 0 {
			n := int32(*u.Parallelism)
			us.MaxUnavailable = &n
		}
		switch u.Order {
		case "":
		case "start-first":
			us.Order = v1.StartFirst
		case "stop-first":
			us.Order = v1.StopFirst
		default:
			c.note(dp+".update_config.order", Unsupported, "%q", u.Order)
		}
		if spec.Mode == v1.ModeGlobal && us.Order == v1.StartFirst {
			c.note(dp+".update_config.order", Unsupported, "start-first with mode global: a node runs one replica")
			us.Order = ""
		}
		if u.Delay != 0 || u.FailureAction != "" || u.Monitor != 0 || u.MaxFailureRatio != 0 {
			c.note(dp+".update_config", Unsupported, "delay, failure_action, monitor, max_failure_ratio: a rollout waits for health and stops on failure")
		}
		if us.MaxUnavailable != nil || us.Order != "" {
			spec.Update = us
		}
	}
	if d.RollbackConfig != nil {
		c.note(dp+".rollback_config", Unsupported, "roll back with ctl rollout undo")
	}
	if d.RestartPolicy != nil && d.RestartPolicy.Condition != "" && d.RestartPolicy.Condition != "any" {
		c.note(dp+".restart_policy", Unsupported, "Constellation restarts every container that stops")
	}
	if d.EndpointMode != "" && d.EndpointMode != "vip" {
		c.note(dp+".endpoint_mode", Unsupported, "Services have a mesh virtual IP")
	}
}

func (c *converter) containerOptions(sp string, sc types.ServiceConfig, spec *v1.ServiceSpec) {
	o := &spec.ContainerOptions
	o.User = sc.User
	o.WorkingDir = sc.WorkingDir
	if len(sc.Sysctls) > 0 {
		o.Sysctls = map[string]string{}
		for k, v := range sc.Sysctls {
			if spec.Network != nil && strings.HasPrefix(k, "net.") {
				c.note(sp+".sysctls."+k, Unsupported, "net.* with network_mode service: set it on the owner")
				continue
			}
			o.Sysctls[k] = v
		}
		if len(o.Sysctls) == 0 {
			o.Sysctls = nil
		}
	}
	o.ReadOnlyRootFilesystem = sc.ReadOnly
	for _, n := range sortedKeys(sc.Ulimits) {
		u := sc.Ulimits[n]
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		if soft > hard && hard != -1 {
			c.note(sp+".ulimits."+n, Unsupported, "soft %d above hard %d", soft, hard)
			continue
		}
		o.Ulimits = append(o.Ulimits, v1.Ulimit{Name: n, Soft: soft, Hard: hard})
	}
	for _, host := range sortedKeys(sc.ExtraHosts) {
		for _, ip := range sc.ExtraHosts[host] {
			o.ExtraHosts = append(o.ExtraHosts, v1.ExtraHost{Host: host, IP: strings.Trim(ip, "[]")})
		}
	}
	if sc.Init != nil {
		o.Init = *sc.Init
	}
	o.StopSignal = sc.StopSignal
	if g := sc.StopGracePeriod; g != nil {
		d := time.Duration(*g)
		if r := d.Round(time.Second); r != d {
			c.note(sp+".stop_grace_period", Changed, "%s rounded to %s (whole seconds)", d, r)
			d = r
		}
		if d > time.Hour {
			c.note(sp+".stop_grace_period", Changed, "%s lowered to 1h", d)
			d = time.Hour
		}
		o.StopGracePeriod = &v1.Duration{Duration: d}
	}
	if sc.ShmSize > 0 {
		o.ShmSizeMB = mib(sc.ShmSize)
	}
	if l := sc.Logging; l != nil && (l.Driver != "" || len(l.Options) > 0) {
		drv := l.Driver
		if drv == "" {
			drv = "json-file"
		}
		o.Logging = &v1.Logging{Driver: drv}
		if len(l.Options) > 0 {
			o.Logging.Options = map[string]string{}
			for k, v := range l.Options {
				o.Logging.Options[k] = v
			}
		}
	}
	if sc.MemLimit > 0 && spec.Resources == nil {
		spec.Resources = &v1.Resources{MemoryMB: max(mib(sc.MemLimit), 6)}
	}
	if sc.CPUS > 0 {
		if spec.Resources == nil {
			spec.Resources = &v1.Resources{}
		}
		if spec.Resources.CPUs == "" {
			spec.Resources.CPUs = strconv.FormatFloat(float64(sc.CPUS), 'f', -1, 32)
		}
	}
}

// leftover reports every non-empty field of the service that no mapping handled.
func (c *converter) leftover(sp string, sc types.ServiceConfig) {
	b, err := json.Marshal(sc)
	if err != nil {
		c.note(sp, Unsupported, "cannot inspect the remaining fields: %v", err)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return
	}
	for _, k := range sortedKeys(m) {
		if c.handled[k] {
			continue
		}
		walkLeaves(sp+"."+k, m[k], func(p string) { c.note(p, Unsupported, "") })
	}
}

func walkLeaves(p string, v any, f func(string)) {
	switch x := v.(type) {
	case nil:
	case bool:
		if x {
			f(p)
		}
	case float64:
		if x != 0 {
			f(p)
		}
	case string:
		if x != "" && x != "0" {
			f(p)
		}
	case []any:
		if len(x) > 0 {
			f(p)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			walkLeaves(p+"."+k, x[k], f)
		}
	default:
		f(p)
	}
}
