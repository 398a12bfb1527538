// Listing zones and records: paging, the API's filters and sort orders. paging, paginate,
// textFilter, matches and sortRecords are pure.

package cloudflare

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// paging reads page and per_page, answering the real API's errors for bad values.
func paging(q map[string][]string, def, min, max int) (page, perPage int, errs []apiError) {
	page, perPage = 1, def
	if v := first(q, "page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, apiError{Code: 1004, Message: "page must be an integer greater than or equal to 1"})
		} else {
			page = n
		}
	}
	if v := first(q, "per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			errs = append(errs, apiError{Code: 1004, Message: fmt.Sprintf("per_page must be an integer between %d and %d", min, max)})
		} else {
			perPage = n
		}
	}
	return page, perPage, errs
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func paginate[T any](items []T, page, perPage int) ([]T, *resultInfo) {
	total := len(items)
	pages := (total + perPage - 1) / perPage
	start := (page - 1) * perPage
	if start > total {
		start = total
	}
	end := min(start+perPage, total)
	out := items[start:end]
	return out, &resultInfo{Page: page, PerPage: perPage, Count: len(out), TotalCount: total, TotalPages: pages}
}

func (s *Server) listZonesLocked(r *http.Request, allowed []string) (int, envelope, http.Header) {
	q := r.URL.Query()
	page, perPage, errs := paging(q, defaultZonesPerPage, 5, maxZonesPerPage)
	if len(errs) > 0 {
		return fail(http.StatusBadRequest, errs...)
	}
	name := strings.TrimSuffix(strings.ToLower(first(q, "name")), ".")
	status := first(q, "status")
	zs := []Zone{}
	for _, z := range s.zones {
		if (name == "" || z.Name == name) && (status == "" || z.Status == status) && tokenAllows(allowed, z.Name) {
			zs = append(zs, z.Zone)
		}
	}
	sort.Slice(zs, func(i, j int) bool { return zs[i].Name < zs[j].Name })
	out, info := paginate(zs, page, perPage)
	return ok(out, info)
}

// textFilter is one of the API's string filters: exact, or field.exact|contains|startswith|endswith.
type textFilter struct {
	field, op, value string
}

func (f textFilter) match(v string) bool {
	v, want := strings.ToLower(v), strings.ToLower(f.value)
	switch f.op {
	case "exact", "":
		return v == want
	case "contains":
		return strings.Contains(v, want)
	case "startswith":
		return strings.HasPrefix(v, want)
	case "endswith":
		return strings.HasSuffix(v, want)
	case "present":
		return v != ""
	case "absent":
		return v == ""
	}
	return false
}

func (s *Server) listRecordsLocked(r *http.Request, z *zone) (int, envelope, http.Header) {
	q := r.URL.Query()
	page, perPage, errs := paging(q, defaultRecordsPage, minRecordsPerPage, maxRecordsPerPage)
	matchAny := false
	switch first(q, "match") {
	case "", "all":
	case "any":
		matchAny = true
	default:
		errs = append(errs, apiError{Code: 1004, Message: "match must be one of all, any"})
	}
	var filters []func(*Record) bool
	for key, vals := range q {
		if len(vals) == 0 {
			continue
		}
		field, op, _ := strings.Cut(key, ".")
		val := vals[0]
		switch field {
		case "name", "content", "comment":
			switch op {
			case "", "exact", "contains", "startswith", "endswith":
			case "present", "absent":
				if field != "comment" {
					errs = append(errs, apiError{Code: 1004, Message: fmt.Sprintf("unknown filter %q", key)})
					continue
				}
			default:
				errs = append(errs, apiError{Code: 1004, Message: fmt.Sprintf("unknown filter %q", key)})
				continue
			}
			if field == "name" && (op == "" || op == "exact") {
				val = normalizeName(val, z.Name)
			}
			f := textFilter{field, op, val}
			filters = append(filters, func(rec *Record) bool {
				switch f.field {
				case "name":
					return f.match(rec.Name)
				case "content":
					return f.match(rec.Content)
				}
				return f.match(rec.Comment)
			})
		case "type":
			t := strings.ToUpper(val)
			filters = append(filters, func(rec *Record) bool { return rec.Type == t })
		case "proxied":
			b, err := strconv.ParseBool(val)
			if err != nil {
				errs = append(errs, apiError{Code: 1004, Message: "proxied must be a boolean"})
				continue
			}
			filters = append(filters, func(rec *Record) bool { return rec.Proxied == b })
		case "page", "per_page", "match", "order", "direction", "tag", "tag-match", "search":
		default:
			errs = append(errs, apiError{Code: 1004, Message: fmt.Sprintf("unknown filter %q", key)})
		}
	}
	order := first(q, "order")
	switch order {
	case "", "type", "name", "content", "ttl", "proxied":
	default:
		errs = append(errs, apiError{Code: 1004, Message: "order must be one of type, name, content, ttl, proxied"})
	}
	desc := first(q, "direction") == "desc"
	if len(errs) > 0 {
		return fail(http.StatusBadRequest, errs...)
	}
	recs := []Record{}
	for _, rec := range z.records {
		if matches(rec, filters, matchAny) {
			recs = append(recs, *rec)
		}
	}
	sortRecords(recs, order, desc)
	out, info := paginate(recs, page, perPage)
	return ok(out, info)
}

func matches(rec *Record, filters []func(*Record) bool, any bool) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		if f(rec) == any {
			return any
		}
	}
	return !any
}

func sortRecords(recs []Record, order string, desc bool) {
	key := func(r Record) string {
		switch order {
		case "name":
			return r.Name
		case "content":
			return r.Content
		case "ttl":
			return fmt.Sprintf("%010d", r.TTL)
		case "proxied":
			return strconv.FormatBool(r.Proxied)
		}
		return r.Type
	}
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if ka, kb := key(a), key(b); ka != kb {
			return (ka < kb) != desc
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Content != b.Content {
			return a.Content < b.Content
		}
		return a.ID < b.ID
	})
}
