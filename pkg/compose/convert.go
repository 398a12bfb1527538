// The conversion's entry points and result types (Convert, FromProject, Result, Note), the
// converter that carries one project's state, and the project-level fields.

package compose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

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
