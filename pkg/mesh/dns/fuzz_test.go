package dns

import (
	"context"
	"errors"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzServeQuery feeds arbitrary bytes through the query path the server runs for a packet:
// miekg/dns's acceptance filter and unpacking, then respond (mesh lookup or forwarding, here to a
// fake upstream that answers, fails or returns junk), then truncation and packing. Nothing may
// panic, and an answer always carries the query's ID and at most one question.
func FuzzServeQuery(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web.", mdns.TypeA}, {"web.constellation.internal.", mdns.TypeAAAA}, {"web-0.web.", mdns.TypeA},
		{"nope.constellation.internal.", mdns.TypeA}, {"example.com.", mdns.TypeA}, {"constellation.internal.", mdns.TypeSOA},
		{"rs0-primary.", mdns.TypeANY}, {"big.example.", mdns.TypeTXT},
	} {
		m := new(mdns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(4096, true)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte{0, 1, 2}, false)
	f.Add(make([]byte, 12), false)

	s, err := New(Config{Upstreams: []string{"192.0.2.1", "192.0.2.2"}})
	if err != nil {
		f.Fatal(err)
	}
	s.SetTable(testTable())
	calls := 0
	s.exchange = func(_ context.Context, m *mdns.Msg, _, _ string) (*mdns.Msg, error) {
		calls++
		switch calls % 3 {
		case 0:
			return nil, errors.New("upstream down")
		case 1:
			r := new(mdns.Msg)
			r.SetReply(m)
			r.Answer = append(r.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: m.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 9}})
			return r, nil
		default:
			r := new(mdns.Msg) // an upstream answer with nothing in it, not even the question
			r.Id = m.Id
			r.Rcode = mdns.RcodeServerFailure
			return r, nil
		}
	}

	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		req := new(mdns.Msg)
		if len(b) < 12 {
			return // miekg/dns drops these before any handler (counted as malformed)
		}
		dh := mdns.Header{
			Id: uint16(b[0])<<8 | uint16(b[1]), Bits: uint16(b[2])<<8 | uint16(b[3]),
			Qdcount: uint16(b[4])<<8 | uint16(b[5]), Ancount: uint16(b[6])<<8 | uint16(b[7]),
			Nscount: uint16(b[8])<<8 | uint16(b[9]), Arcount: uint16(b[10])<<8 | uint16(b[11]),
		}
		// respond must cope with whatever unpacks, accepted by the filter or not.
		_ = s.accept(dh)
		if err := req.Unpack(b); err != nil {
			return
		}
		resp := s.respond(req, tcp)
		if resp == nil {
			if !req.Response {
				t.Fatalf("no answer to a query: %v", req)
			}
			return
		}
		if resp.Id != req.Id {
			t.Fatalf("answer id %d, query id %d", resp.Id, req.Id)
		}
		if len(resp.Question) > 1 {
			t.Fatalf("answer with %d questions", len(resp.Question))
		}
		if !tcp {
			resp.Truncate(clientUDPSize(req))
		}
		out, err := resp.Pack()
		if err != nil {
			return // an echoed question miekg cannot pack again: the write fails, no panic
		}
		if !tcp && len(out) > clientUDPSize(req) {
			t.Fatalf("udp answer %d bytes, limit %d", len(out), clientUDPSize(req))
		}
	})
}
