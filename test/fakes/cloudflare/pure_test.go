// Table tests for the pure parts of the fake: paging, filters, sorting, validation, conflicts.

package cloudflare

import (
	"reflect"
	"strings"
	"testing"
)

func TestPaging(t *testing.T) {
	for _, tc := range []struct {
		q             map[string][]string
		page, perPage int
		errs          int
	}{
		{nil, 1, 20, 0},
		{map[string][]string{"page": {"3"}, "per_page": {"5"}}, 3, 5, 0},
		{map[string][]string{"page": {"0"}}, 1, 20, 1},
		{map[string][]string{"page": {"x"}}, 1, 20, 1},
		{map[string][]string{"per_page": {"4"}}, 1, 20, 1},
		{map[string][]string{"per_page": {"51"}}, 1, 20, 1},
		{map[string][]string{"page": {"-1"}, "per_page": {"1000"}}, 1, 20, 2},
		{map[string][]string{"page": {}}, 1, 20, 0},
	} {
		page, perPage, errs := paging(tc.q, 20, 5, 50)
		if page != tc.page || perPage != tc.perPage || len(errs) != tc.errs {
			t.Errorf("paging(%v) = %d, %d, %v; want %d, %d, %d errors", tc.q, page, perPage, errs, tc.page, tc.perPage, tc.errs)
		}
		for _, e := range errs {
			if e.Code != 1004 {
				t.Errorf("paging(%v): error code %d, want 1004", tc.q, e.Code)
			}
		}
	}
}

func TestPaginate(t *testing.T) {
	items := []int{1, 2, 3, 4, 5, 6, 7}
	for _, tc := range []struct {
		page, perPage int
		want          []int
		info          resultInfo
	}{
		{1, 5, []int{1, 2, 3, 4, 5}, resultInfo{Page: 1, PerPage: 5, Count: 5, TotalCount: 7, TotalPages: 2}},
		{2, 5, []int{6, 7}, resultInfo{Page: 2, PerPage: 5, Count: 2, TotalCount: 7, TotalPages: 2}},
		{3, 5, []int{}, resultInfo{Page: 3, PerPage: 5, Count: 0, TotalCount: 7, TotalPages: 2}},
		{1, 7, items, resultInfo{Page: 1, PerPage: 7, Count: 7, TotalCount: 7, TotalPages: 1}},
	} {
		got, info := paginate(items, tc.page, tc.perPage)
		if !reflect.DeepEqual(got, tc.want) || *info != tc.info {
			t.Errorf("paginate(page %d, per %d) = %v, %+v; want %v, %+v", tc.page, tc.perPage, got, *info, tc.want, tc.info)
		}
	}
	if got, info := paginate([]int{}, 1, 5); len(got) != 0 || info.TotalPages != 0 {
		t.Errorf("paginate(empty) = %v, %+v", got, *info)
	}
}

func TestTextFilterMatch(t *testing.T) {
	for _, tc := range []struct {
		op, value, v string
		want         bool
	}{
		{"", "WWW.example.com", "www.example.com", true},
		{"exact", "www", "www.example.com", false},
		{"contains", "EXAMPLE", "www.example.com", true},
		{"contains", "nope", "www.example.com", false},
		{"startswith", "www.", "WWW.example.com", true},
		{"startswith", "example", "www.example.com", false},
		{"endswith", ".com", "www.example.com", true},
		{"endswith", ".org", "www.example.com", false},
		{"present", "", "x", true},
		{"present", "", "", false},
		{"absent", "", "", true},
		{"absent", "", "x", false},
		{"regex", "x", "x", false},
	} {
		if got := (textFilter{"name", tc.op, tc.value}).match(tc.v); got != tc.want {
			t.Errorf("textFilter{%q, %q}.match(%q) = %v, want %v", tc.op, tc.value, tc.v, got, tc.want)
		}
	}
}

func TestMatches(t *testing.T) {
	isA := func(r *Record) bool { return r.Type == "A" }
	isWWW := func(r *Record) bool { return strings.HasPrefix(r.Name, "www.") }
	a := &Record{Type: "A", Name: "api.example.com"}
	for _, tc := range []struct {
		name    string
		filters []func(*Record) bool
		any     bool
		want    bool
	}{
		{"no filters, all", nil, false, true},
		{"no filters, any", nil, true, true},
		{"all, one fails", []func(*Record) bool{isA, isWWW}, false, false},
		{"all, all pass", []func(*Record) bool{isA}, false, true},
		{"any, one passes", []func(*Record) bool{isWWW, isA}, true, true},
		{"any, none passes", []func(*Record) bool{isWWW}, true, false},
	} {
		if got := matches(a, tc.filters, tc.any); got != tc.want {
			t.Errorf("%s: matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSortRecords(t *testing.T) {
	recs := func() []Record {
		return []Record{
			{ID: "1", Type: "TXT", Name: "b.x", Content: "z", TTL: 300},
			{ID: "2", Type: "A", Name: "c.x", Content: "1.1.1.1", TTL: 60, Proxied: true},
			{ID: "3", Type: "A", Name: "a.x", Content: "2.2.2.2", TTL: 1200},
			{ID: "4", Type: "A", Name: "a.x", Content: "2.2.2.2", TTL: 1200},
		}
	}
	for _, tc := range []struct {
		order string
		desc  bool
		want  []string
	}{
		{"", false, []string{"3", "4", "2", "1"}},
		{"type", true, []string{"1", "3", "4", "2"}},
		{"name", false, []string{"3", "4", "1", "2"}},
		{"content", false, []string{"2", "3", "4", "1"}},
		{"ttl", false, []string{"2", "1", "3", "4"}},
		{"ttl", true, []string{"3", "4", "1", "2"}},
		{"proxied", false, []string{"3", "4", "1", "2"}},
	} {
		rs := recs()
		sortRecords(rs, tc.order, tc.desc)
		var got []string
		for _, r := range rs {
			got = append(got, r.ID)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("sortRecords(%q, desc %v) = %v, want %v", tc.order, tc.desc, got, tc.want)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"@", "example.com"},
		{"example.com", "example.com"},
		{"WWW", "www.example.com"},
		{" www.example.com. ", "www.example.com"},
		{"a.b.example.com", "a.b.example.com"},
		{"notexample.com", "notexample.com.example.com"},
	} {
		if got := normalizeName(tc.in, "example.com"); got != tc.want {
			t.Errorf("normalizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rec         Record
		codes       []int
		wantName    string
		wantContent string
	}{
		{"A", Record{Type: "A", Name: "www", Content: "192.0.2.1", TTL: 1}, nil, "www.example.com", "192.0.2.1"},
		{"A bad", Record{Type: "A", Name: "www", Content: "::1", TTL: 1}, []int{9005}, "www.example.com", "::1"},
		{"AAAA", Record{Type: "AAAA", Name: "@", Content: "2001:DB8::1", TTL: 60}, nil, "example.com", "2001:db8::1"},
		{"AAAA v4", Record{Type: "AAAA", Name: "@", Content: "192.0.2.1", TTL: 60}, []int{9006}, "example.com", "192.0.2.1"},
		{"CNAME", Record{Type: "CNAME", Name: "w", Content: "Target.Example.NET.", TTL: 1}, nil, "w.example.com", "target.example.net"},
		{"CNAME empty", Record{Type: "CNAME", Name: "w", TTL: 1}, []int{9007}, "w.example.com", ""},
		{"TXT empty", Record{Type: "TXT", Name: "_dmarc", TTL: 1}, []int{9008}, "_dmarc.example.com", ""},
		{"TXT long", Record{Type: "TXT", Name: "t", Content: strings.Repeat("x", maxTXTLen+1), TTL: 1}, []int{9100}, "t.example.com", ""},
		{"MX empty", Record{Type: "MX", Name: "@", TTL: 1}, []int{9009}, "example.com", ""},
		{"no type", Record{Name: "x"}, []int{9101}, "x", ""},
		{"bad type", Record{Type: "PTR", Name: "x"}, []int{9101}, "x", ""},
		{"no name", Record{Type: "A", Name: " ", Content: "192.0.2.1", TTL: 1}, []int{9000}, " ", "192.0.2.1"},
		{"bad name", Record{Type: "A", Name: "a..b", Content: "192.0.2.1", TTL: 1}, []int{9000}, "a..b.example.com", "192.0.2.1"},
		{"wildcard", Record{Type: "A", Name: "*.dev", Content: "192.0.2.1", TTL: 1}, nil, "*.dev.example.com", "192.0.2.1"},
		{"ttl", Record{Type: "A", Name: "w", Content: "192.0.2.1", TTL: 30}, []int{9021}, "w.example.com", "192.0.2.1"},
		{"proxied TXT", Record{Type: "TXT", Name: "t", Content: "v", TTL: 1, Proxied: true}, []int{9004}, "t.example.com", "v"},
		{"comment", Record{Type: "TXT", Name: "t", Content: "v", TTL: 1, Comment: strings.Repeat("c", maxCommentLen+1)}, []int{9102}, "t.example.com", "v"},
		{"several", Record{Type: "A", Name: "w", Content: "x", TTL: 2}, []int{9005, 9021}, "w.example.com", "x"},
	} {
		r := tc.rec
		var codes []int
		for _, e := range validate(&r, "example.com") {
			codes = append(codes, e.Code)
		}
		if !reflect.DeepEqual(codes, tc.codes) {
			t.Errorf("%s: validate codes %v, want %v", tc.name, codes, tc.codes)
		}
		if r.Name != tc.wantName || (tc.wantContent != "" && r.Content != tc.wantContent) {
			t.Errorf("%s: validated to name %q content %q, want %q %q", tc.name, r.Name, r.Content, tc.wantName, tc.wantContent)
		}
	}
}

func TestConflict(t *testing.T) {
	z := &zone{records: map[string]*Record{
		"c": {ID: "c", Type: "CNAME", Name: "alias.x", Content: "t.x"},
		"a": {ID: "a", Type: "A", Name: "host.x", Content: "192.0.2.1"},
		"t": {ID: "t", Type: "TXT", Name: "txt.x", Content: "v"},
	}}
	for _, tc := range []struct {
		name string
		rec  Record
		code int // 0: none
	}{
		{"same CNAME", Record{ID: "n", Type: "CNAME", Name: "alias.x", Content: "t.x"}, 81058},
		{"other CNAME", Record{ID: "n", Type: "CNAME", Name: "alias.x", Content: "u.x"}, 81053},
		{"CNAME over A", Record{ID: "n", Type: "CNAME", Name: "host.x", Content: "u.x"}, 81053},
		{"A over CNAME", Record{ID: "n", Type: "A", Name: "alias.x", Content: "192.0.2.2"}, 81054},
		{"identical A", Record{ID: "n", Type: "A", Name: "host.x", Content: "192.0.2.1"}, 81058},
		{"second A", Record{ID: "n", Type: "A", Name: "host.x", Content: "192.0.2.2"}, 0},
		{"identical TXT", Record{ID: "n", Type: "TXT", Name: "txt.x", Content: "v"}, 81057},
		{"itself", Record{ID: "a", Type: "A", Name: "host.x", Content: "192.0.2.1"}, 0},
		{"other name", Record{ID: "n", Type: "CNAME", Name: "new.x", Content: "t.x"}, 0},
	} {
		got := 0
		if e := conflict(z, &tc.rec); e != nil {
			got = e.Code
		}
		if got != tc.code {
			t.Errorf("%s: conflict code %d, want %d", tc.name, got, tc.code)
		}
	}
}

func TestTokenAllows(t *testing.T) {
	for _, tc := range []struct {
		allowed []string
		zone    string
		want    bool
	}{
		{nil, "example.com", true},
		{[]string{}, "example.com", false},
		{[]string{"Example.COM"}, "example.com", true},
		{[]string{"other.com"}, "example.com", false},
	} {
		if got := tokenAllows(tc.allowed, tc.zone); got != tc.want {
			t.Errorf("tokenAllows(%v, %q) = %v, want %v", tc.allowed, tc.zone, got, tc.want)
		}
	}
}
