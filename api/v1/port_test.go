package v1

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// serviceJSON is a Service whose health check and routes name their port as given (raw JSON).
func serviceJSON(port string) []byte {
	return []byte(`{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"web"},"spec":{
		"image":"web:1","ports":[{"name":"http","containerPort":8080},{"name":"dns","containerPort":53,"protocol":"udp"}],
		"healthCheck":{"http":{"path":"/","port":` + port + `}},
		"routes":{"http":[{"host":"web.test","port":` + port + `}],"tcp":[{"hostSNI":"*","entryPoint":"tcp","port":` + port + `}]}}}`)
}

// TestPortIsIntOrString is point 12: a JSON number and a string (name, or number in a string)
// both decode, validate, resolve to the same port, and marshal to a form older agents read.
func TestPortIsIntOrString(t *testing.T) {
	for _, port := range []string{`8080`, `"8080"`, `"http"`} {
		t.Run(port, func(t *testing.T) {
			obj, err := Decode(serviceJSON(port))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			obj.Default()
			if errs := obj.Validate(); len(errs) > 0 {
				t.Fatalf("validate: %v", errs.ToAggregate("services", "web"))
			}
			s := obj.(*Service)
			for _, ref := range []PortRef{s.Spec.HealthCheck.HTTP.Port, s.Spec.Routes.HTTP[0].Port, s.Spec.Routes.TCP[0].Port} {
				p, ok := s.Spec.ResolvePort(ref, ProtocolTCP)
				if !ok || p.ContainerPort != 8080 {
					t.Fatalf("ResolvePort(%q) = %+v, %v; want the 8080 port", ref, p, ok)
				}
			}
			b, err := json.Marshal(s.Spec.HealthCheck)
			if err != nil {
				t.Fatal(err)
			}
			want := `"port":` + port
			if port == `8080` {
				want = `"port":"8080"` // written as a string: readable by agents that predate int-or-string
			}
			if !strings.Contains(string(b), want) {
				t.Fatalf("marshalled %s, want it to contain %s", b, want)
			}
		})
	}
}

func TestPortDecodeErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ port, field string }{
		{`true`, "spec.healthCheck.http.port"},
		{`8080.5`, "spec.healthCheck.http.port"},
		{`{"name":"http"}`, "spec.healthCheck.http.port"},
		{`""`, "spec.healthCheck.http.port"},
		{`99999999999`, "spec.healthCheck.http.port"},
	} {
		_, err := Decode(serviceJSON(tc.port))
		var de *DecodeError
		if !errors.As(err, &de) || de.Field != tc.field {
			t.Errorf("port %s: err = %v, want a decode error at %s", tc.port, err, tc.field)
		}
	}
}

func TestPortValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  PortRef
		msg  string
	}{
		{"zero", "0", "must be 1-65535, got 0"},
		{"too high", "70000", "must be 1-65535, got 70000"},
		{"negative", "-1", "must be 1-65535, got -1"},
		{"undeclared number", "9090", "no tcp port numbered 9090"},
		{"undeclared name", "admin", `no tcp port named "admin"`},
		{"not a name", "Not A Name", "must be a port number or the name of a port"},
		{"udp port from a tcp route", "dns", `no tcp port named "dns"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, field := range []string{"spec.healthCheck.http.port", "spec.routes.http[0].port", "spec.routes.tcp[0].port"} {
				s := validService()
				switch field {
				case "spec.healthCheck.http.port":
					s.Spec.HealthCheck.HTTP.Port = tc.ref
				case "spec.routes.http[0].port":
					s.Spec.Routes.HTTP[0].Port = tc.ref
				case "spec.routes.tcp[0].port":
					s.Spec.Routes.TCP[0].Port = tc.ref
				}
				errs := s.Validate()
				var found bool
				for _, e := range errs {
					if e.Field == field && strings.Contains(e.Message, tc.msg) {
						found = true
					}
				}
				if !found {
					t.Errorf("%s = %q: errors %v, want %q at %s", field, tc.ref, errs, tc.msg, field)
				}
			}
		})
	}
	// A port name must hold a letter, so that "8080" always means a number.
	s := validService()
	s.Spec.Ports[0].Name = "8080"
	s.Spec.HealthCheck.HTTP.Port, s.Spec.Routes.HTTP[0].Port, s.Spec.Routes.TCP[0].Port = "", "", ""
	if errs := s.Validate(); len(errs) != 1 || errs[0].Field != "spec.ports[0].name" {
		t.Errorf("a numeric port name: errors %v, want one at spec.ports[0].name", errs)
	}
}
