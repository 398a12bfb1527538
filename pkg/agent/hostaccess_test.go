package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
)

func hostService(name string, mut func(*v1.ServiceSpec)) *v1.Service {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ServiceSpec{Image: "echo:1"}}
	mut(&s.Spec)
	return s
}

func putErr(t *testing.T, c *client.Client, obj v1.Object) *client.Error {
	t.Helper()
	_, err := c.Put(context.Background(), obj, client.PutOptions{})
	if err == nil {
		return nil
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("put %s: %v", obj.GetMetadata().Name, err)
	}
	return ce
}

// TestAdmissionRefusesHostAccess: through the API, a Service reaching into the host is refused
// with 422, the field path and the fix, unless it opts in and the agent allows it; the agent's
// data dir is sensitive.
func TestAdmissionRefusesHostAccess(t *testing.T) {
	a, c := startAgent(t, "n1", nil)
	cases := []struct {
		name  string
		spec  func(*v1.ServiceSpec)
		field string
		says  []string
	}{
		{"docker socket", func(sp *v1.ServiceSpec) {
			sp.Volumes = []v1.VolumeMount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
		}, "spec.volumes[0].source", []string{"set spec.hostAccess: true", "--security.allowHostAccess", "--security.hostPaths"}},
		{"root with opt-in", func(sp *v1.ServiceSpec) {
			sp.HostAccess = true
			sp.Volumes = []v1.VolumeMount{{Source: "/", Target: "/host"}}
		}, "spec.volumes[0].source", []string{"refused by this agent", "--security.allowHostAccess"}},
		{"data dir", func(sp *v1.ServiceSpec) {
			sp.HostAccess = true
			sp.Volumes = []v1.VolumeMount{{Source: a.cfg.DataDir, Target: "/d"}}
		}, "spec.volumes[0].source", []string{"data dir"}},
		{"plain bind without opt-in", func(sp *v1.ServiceSpec) {
			sp.Volumes = []v1.VolumeMount{{Source: "/srv/www", Target: "/www"}}
		}, "spec.volumes[0].source", []string{"set spec.hostAccess: true"}},
		{"privileged", func(sp *v1.ServiceSpec) { sp.HostAccess, sp.Privileged = true, true }, "spec.privileged", []string{"--security.allowHostAccess"}},
		{"hostPID", func(sp *v1.ServiceSpec) { sp.HostAccess, sp.HostPID = true, true }, "spec.hostPID", []string{"--security.allowHostAccess"}},
		{"capAdd", func(sp *v1.ServiceSpec) { sp.HostAccess, sp.CapAdd = true, []string{"SYS_ADMIN"} }, "spec.capAdd[0]", []string{"--security.allowHostAccess"}},
		{"hostNetwork", func(sp *v1.ServiceSpec) {
			sp.HostAccess, sp.HostNetwork, sp.Placement = true, true, &v1.Placement{MaxPerNode: 1}
		}, "spec.hostNetwork", []string{"--security.allowHostAccess"}},
		{"hostNetwork shape", func(sp *v1.ServiceSpec) { sp.HostAccess, sp.HostNetwork = true, true }, "spec.placement.maxPerNode", []string{"must be 1 with hostNetwork"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ce := putErr(t, c, hostService("h"+string(rune('a'+i)), tc.spec))
			if ce == nil {
				t.Fatal("accepted")
			}
			if ce.StatusCode != 422 || ce.Field != tc.field {
				t.Fatalf("got %d field %q: %s", ce.StatusCode, ce.Field, ce.Message)
			}
			for _, s := range tc.says {
				if !strings.Contains(ce.Message, s) {
					t.Errorf("%q does not say %q", ce.Message, s)
				}
			}
		})
	}
	// Allowed: a plain bind mount with the opt-in, a listed path is not needed for it.
	if ce := putErr(t, c, hostService("plain", func(sp *v1.ServiceSpec) {
		sp.HostAccess = true
		sp.Volumes = []v1.VolumeMount{{Source: "/srv/www", Target: "/www"}}
	})); ce != nil {
		t.Fatalf("plain bind mount with opt-in refused: %v", ce)
	}
}

// TestAdmissionAllowsHostAccessByFlag: an agent started with --security.allowHostAccess admits
// the opted-in Service; one with --security.hostPaths admits the listed path only.
func TestAdmissionAllowsHostAccessByFlag(t *testing.T) {
	_, open := startAgent(t, "n1", func(c *config.Config) { c.Security.AllowHostAccess = true })
	sock := hostService("agent", func(sp *v1.ServiceSpec) {
		sp.HostAccess, sp.Privileged = true, true
		sp.Volumes = []v1.VolumeMount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	})
	if ce := putErr(t, open, sock); ce != nil {
		t.Fatalf("refused with allowHostAccess: %v", ce)
	}
	_, listed := startAgent(t, "n2", func(c *config.Config) { c.Security.HostPaths = []string{"/etc/ssl/certs"} })
	certs := hostService("certs", func(sp *v1.ServiceSpec) {
		sp.HostAccess = true
		sp.Volumes = []v1.VolumeMount{{Source: "/etc/ssl/certs", Target: "/certs", ReadOnly: true}}
	})
	if ce := putErr(t, listed, certs); ce != nil {
		t.Fatalf("listed path refused: %v", ce)
	}
	etc := hostService("etc", func(sp *v1.ServiceSpec) {
		sp.HostAccess = true
		sp.Volumes = []v1.VolumeMount{{Source: "/etc", Target: "/etc-host"}}
	})
	if ce := putErr(t, listed, etc); ce == nil || ce.StatusCode != 422 || ce.Field != "spec.volumes[0].source" {
		t.Fatalf("unlisted /etc: %v", ce)
	}
}

// TestAdmissionRefusesPlainBasicAuth: a Service naming a stored Secret that holds a plain
// password for basic auth is refused at the route's field; so is writing a plain value into a
// Secret a route already names. The value is never in the answer.
func TestAdmissionRefusesPlainBasicAuth(t *testing.T) {
	_, c := startAgent(t, "n1", nil)
	sec := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}, Metadata: v1.ObjectMeta{Name: "admins"},
		Spec: v1.SecretSpec{Data: v1.SecretData{"alice": "wonderland-pw"}}}
	if ce := putErr(t, c, sec); ce != nil {
		t.Fatalf("a Secret no route names is refused: %v", ce)
	}
	web := hostService("web", func(sp *v1.ServiceSpec) {
		sp.Ports = []v1.ServicePort{{ContainerPort: 8080}}
		sp.Routes = &v1.Routes{HTTP: []v1.HTTPRoute{{Host: "admin.example.com", Middlewares: &v1.HTTPMiddlewares{BasicAuthSecret: "admins"}}}}
	})
	ce := putErr(t, c, web)
	if ce == nil || ce.StatusCode != 422 || ce.Field != "spec.routes.http[0].middlewares.basicAuthSecret" ||
		!strings.Contains(ce.Message, `key "alice"`) || strings.Contains(ce.Message, "wonderland") {
		t.Fatalf("got %v", ce)
	}
	sec.Spec.Data["alice"] = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="
	if ce := putErr(t, c, sec); ce != nil {
		t.Fatal(ce)
	}
	if ce := putErr(t, c, web); ce != nil {
		t.Fatalf("hashed secret: %v", ce)
	}
	sec.Spec.Data["bob"] = "builder-pw"
	sec.Metadata.ResourceVersion = ""
	ce = putErr(t, c, sec)
	if ce == nil || ce.StatusCode != 422 || ce.Field != "spec.data[bob]" || !strings.Contains(ce.Message, "services/web") ||
		strings.Contains(ce.Message, "builder-pw") {
		t.Fatalf("got %v", ce)
	}
}
