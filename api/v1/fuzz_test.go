package v1

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeValidate feeds arbitrary bytes to the strict decoder and, when it accepts them, to
// defaulting and validation: nothing may panic, and an accepted, valid object must survive a
// round trip unchanged.
func FuzzDecodeValidate(f *testing.F) {
	for _, o := range []Object{validService(), validDNS(), validRS()} {
		b, _ := json.Marshal(o)
		f.Add(b)
	}
	f.Add([]byte(`{"apiVersion":"constellation/v1","kind":"Secret","metadata":{"name":"s"},"spec":{"data":{"k":"v"}}}`))
	f.Add([]byte(`{"apiVersion":"constellation/v1","kind":"Lease","metadata":{"name":"lb"},"spec":{"holderIdentity":"n1","leaseDurationSeconds":5}}`))
	f.Add([]byte(`{"kind":"Node","metadata":{"name":"n"},"spec":{"labels":{"role":"lb"}}}`))
	f.Add([]byte(`{"kind":"Service","spec":{"healthCheck":{"interval":"1h","timeout":"-1s"}}}`))
	// Ports are int-or-string: numbers, names and numbers in strings, in range or not.
	for _, port := range []string{`8080`, `"8080"`, `"http"`, `0`, `70000`, `-1`, `""`, `8080.0`, `1e3`, `"0x50"`, `null`} {
		f.Add(serviceJSON(port))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := Decode(data)
		if err != nil {
			return
		}
		obj.Default()
		if errs := obj.Validate(); len(errs) > 0 {
			_ = errs.ToAggregate("x", "y").Error()
			return
		}
		b, err := Encode(obj)
		if err != nil {
			t.Fatalf("encode a valid object: %v", err)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("decode what we encoded: %v\n%s", err, b)
		}
		b2, _ := Encode(back)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed the object:\n%s\n%s", b, b2)
		}
		if errs := back.Validate(); len(errs) > 0 {
			t.Fatalf("valid object invalid after round trip: %v", errs)
		}
		// Every port a valid Service names resolves to one of its ports.
		if s, ok := back.(*Service); ok {
			checkPortRefsResolve(t, s)
		}
	})
}

func checkPortRefsResolve(t *testing.T, s *Service) {
	t.Helper()
	check := func(field string, ref PortRef, proto Protocol) {
		if _, ok := s.Spec.ResolvePort(ref, proto); !ok {
			t.Fatalf("valid Service: %s %q resolves to no port", field, ref)
		}
	}
	if hc := s.Spec.HealthCheck; hc != nil {
		if hc.HTTP != nil {
			check("healthCheck.http.port", hc.HTTP.Port, ProtocolTCP)
		}
		if hc.TCP != nil {
			check("healthCheck.tcp.port", hc.TCP.Port, ProtocolTCP)
		}
	}
	if r := s.Spec.Routes; r != nil {
		for _, h := range r.HTTP {
			check("routes.http.port", h.Port, ProtocolTCP)
		}
		for _, tr := range r.TCP {
			check("routes.tcp.port", tr.Port, ProtocolTCP)
		}
		for _, u := range r.UDP {
			check("routes.udp.port", u.Port, ProtocolUDP)
		}
	}
}
