package traefik

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

const (
	bcryptHash = "$2y$05$Yx1cQ2X2wBq2bM0JZr8oUuM6KJ7T4x0m0cH4oH0zv0sBvY5sJ9n2a"
	apr1Hash   = "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"
	shaHashV   = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="
)

func TestIsHTPasswdHash(t *testing.T) {
	for v, want := range map[string]bool{
		bcryptHash:                       true,
		"$2a$10$" + bcryptHash[7:]:       true,
		"$2b$12$" + bcryptHash[7:]:       true,
		apr1Hash:                         true,
		"$apr1$a$HqJZimcKQFAMYayBlzkrA/": true,
		shaHashV:                         true,
		"":                               false,
		"wonderland":                     false,
		"$2y$":                           false,
		"$2y$05$short":                   false,
		"$2y$05$" + bcryptHash[7:] + "x": false,
		"$2y$99$" + bcryptHash[7:]:       false,
		"$2x$05$" + bcryptHash[7:]:       false,
		"$apr1$":                         false,
		"$apr1$toolongsalt$HqJZimcKQFAMYayBlzkrA/": false,
		"$1$r31.....$HqJZimcKQFAMYayBlzkrA/":       false,
		"{SHA}":                                    false,
		"{SHA}wonderland":                          false,
		"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n":      false,
		"{sha}W6ph5Mm5Pz8GgiULbPgzG37mj9g=":        false,
		"plain " + bcryptHash:                      false,
	} {
		if got := IsHTPasswdHash(v); got != want {
			t.Errorf("IsHTPasswdHash(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestRenderRefusesPlainBasicAuthValues: a plain password in a basic-auth Secret is not rendered
// (nor is anything that is not an htpasswd hash); it is reported at the route's field with the
// Secret's key, never the value. The hashes beside it still are.
func TestRenderRefusesPlainBasicAuthValues(t *testing.T) {
	st := loadFixture(t, "testdata/render/full-http.json")
	st.Secrets[0].Spec.Data["carol"] = "correct-horse-battery"
	st.Secrets[0].Spec.Data["dave"] = "$2y$not-a-real-hash"
	cfg, problems := Render(st)
	body, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"correct-horse-battery", "not-a-real-hash", "carol", "dave"} {
		if strings.Contains(string(body), v) {
			t.Errorf("the Traefik config holds %q", v)
		}
	}
	for _, v := range []string{"bob:" + bcryptHash, "alice:" + shaHashV} {
		if !strings.Contains(string(body), v) {
			t.Errorf("the Traefik config lacks %q", v)
		}
	}
	if len(problems) != 2 {
		t.Fatalf("problems %v, want two", problems)
	}
	for i, user := range []string{"carol", "dave"} {
		p := problems[i]
		if !strings.HasSuffix(p.Field, ".middlewares.basicAuthSecret") || !strings.HasPrefix(p.Field, "spec.routes.http[") ||
			!strings.Contains(p.Message, `key "`+user+`"`) || !strings.Contains(p.Message, "htpasswd") {
			t.Errorf("problem %d: %s", i, p)
		}
		if strings.Contains(p.String(), "correct-horse") || strings.Contains(p.String(), "not-a-real") {
			t.Errorf("problem leaks the value: %s", p)
		}
	}
}

func TestAdmitBasicAuth(t *testing.T) {
	svc := &v1.Service{Metadata: v1.ObjectMeta{Name: "shop"}, Spec: v1.ServiceSpec{Routes: &v1.Routes{HTTP: []v1.HTTPRoute{
		{Host: "a.example.com"},
		{Host: "b.example.com", Middlewares: &v1.HTTPMiddlewares{BasicAuthSecret: "admins"}},
		{Host: "c.example.com", Middlewares: &v1.HTTPMiddlewares{BasicAuthSecret: "later"}},
	}}}}
	secrets := map[string]*v1.Secret{"admins": {Metadata: v1.ObjectMeta{Name: "admins"},
		Spec: v1.SecretSpec{Data: v1.SecretData{"bob": bcryptHash, "eve": "plain-s3cret", "bad:user": shaHashV}}}}
	get := func(n string) *v1.Secret { return secrets[n] }
	errs := AdmitBasicAuth(svc, get)
	if len(errs) != 2 {
		t.Fatalf("errors %v, want 2", errs)
	}
	for _, e := range errs {
		if e.Field != "spec.routes.http[1].middlewares.basicAuthSecret" || !strings.Contains(e.Message, `secret "admins"`) {
			t.Errorf("error %v", e)
		}
		if strings.Contains(e.Message, "plain-s3cret") {
			t.Errorf("error leaks the value: %v", e)
		}
	}
	if !strings.Contains(errs[0].Message, `"bad:user"`) || !strings.Contains(errs[1].Message, `"eve"`) {
		t.Errorf("errors %v: want bad:user then eve", errs)
	}
	secrets["admins"].Spec.Data = v1.SecretData{"bob": bcryptHash, "alice": apr1Hash}
	if errs := AdmitBasicAuth(svc, get); len(errs) != 0 {
		t.Fatalf("hashes refused: %v", errs)
	}

	// The Secret written later is checked against the Services naming it.
	bad := &v1.Secret{Metadata: v1.ObjectMeta{Name: "later"}, Spec: v1.SecretSpec{Data: v1.SecretData{"root": "hunter2hunter2"}}}
	errs = AdmitBasicAuthSecret(bad, []*v1.Service{svc})
	if len(errs) != 1 || errs[0].Field != "spec.data[root]" || !strings.Contains(errs[0].Message, "services/shop spec.routes.http[2].middlewares.basicAuthSecret") ||
		strings.Contains(errs[0].Message, "hunter2") {
		t.Fatalf("errors %v", errs)
	}
	other := &v1.Secret{Metadata: v1.ObjectMeta{Name: "db"}, Spec: v1.SecretSpec{Data: v1.SecretData{"password": "plain"}}}
	if errs := AdmitBasicAuthSecret(other, []*v1.Service{svc}); len(errs) != 0 {
		t.Fatalf("a Secret no route names was refused: %v", errs)
	}
}
