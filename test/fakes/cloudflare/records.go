// Writing records: request bodies, the API's validation and normalization, and conflicts between
// records of one name. validate, conflict and normalizeName are pure.

package cloudflare

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
)

// recordBody is a create/update request. Pointers tell PATCH what was sent.
type recordBody struct {
	Type     *string         `json:"type"`
	Name     *string         `json:"name"`
	Content  *string         `json:"content"`
	TTL      *int            `json:"ttl"`
	Proxied  *bool           `json:"proxied"`
	Comment  *string         `json:"comment"`
	Tags     []string        `json:"tags"`
	Priority *int            `json:"priority"`
	Data     json.RawMessage `json:"data"`
	Settings json.RawMessage `json:"settings"`
	Meta     json.RawMessage `json:"meta"`
	ID       string          `json:"id"`
}

// decodeRecordBody decodes a create or update request body as the fake does.
func decodeRecordBody(b []byte) (recordBody, error) {
	var body recordBody
	err := json.Unmarshal(b, &body)
	return body, err
}

func (s *Server) writeRecordLocked(r *http.Request, z *zone, cur *Record, patch bool) (int, envelope, http.Header) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		return fail(http.StatusBadRequest, apiError{Code: 9207, Message: "Request body is invalid."})
	}
	body, err := decodeRecordBody(raw)
	if err != nil {
		return fail(http.StatusBadRequest, apiError{Code: 9207, Message: "Request body is invalid."})
	}
	var next Record
	if cur != nil && patch {
		next = *cur
	} else if cur != nil {
		next = Record{ID: cur.ID, CreatedOn: cur.CreatedOn, Comment: "", Tags: []string{}}
	} else {
		next = Record{TTL: 1, Tags: []string{}}
	}
	if body.Type != nil {
		next.Type = strings.ToUpper(*body.Type)
	}
	if body.Name != nil {
		next.Name = *body.Name
	}
	if body.Content != nil {
		next.Content = *body.Content
	}
	if body.TTL != nil {
		next.TTL = *body.TTL
	} else if !patch {
		next.TTL = 1
	}
	if body.Proxied != nil {
		next.Proxied = *body.Proxied
	} else if !patch {
		next.Proxied = false
	}
	commentChanged := false
	if body.Comment != nil {
		commentChanged = next.Comment != *body.Comment
		next.Comment = *body.Comment
	}
	if body.Tags != nil {
		next.Tags = body.Tags
	}
	if errs := validate(&next, z.Name); len(errs) > 0 {
		return fail(http.StatusBadRequest, errs...)
	}
	if e := conflict(z, &next); e != nil {
		return fail(http.StatusBadRequest, *e)
	}
	now := s.now().UTC()
	if cur == nil {
		next.ID = newID()
		next.CreatedOn = now
	}
	next.ZoneID, next.ZoneName, next.ModifiedOn = z.ID, z.Name, now
	next.Proxiable = proxiable(next.Type)
	if next.Proxied {
		next.TTL = 1 // proxied records always have automatic TTL
	}
	if commentChanged || (cur == nil && next.Comment != "") {
		next.CommentModifiedOn = &now
	}
	z.records[next.ID] = &next
	return ok(next, nil)
}

// validate checks a record the way the API does and normalizes name and content.
func validate(r *Record, zoneName string) []apiError {
	var errs []apiError
	switch r.Type {
	case "A", "AAAA", "CNAME", "TXT", "MX", "NS", "CAA", "SRV":
	case "":
		return []apiError{{Code: 9101, Message: "DNS record type is required."}}
	default:
		return []apiError{{Code: 9101, Message: fmt.Sprintf("DNS record type %q is invalid.", r.Type)}}
	}
	if strings.TrimSpace(r.Name) == "" {
		errs = append(errs, apiError{Code: 9000, Message: "DNS name is invalid."})
	} else {
		r.Name = normalizeName(r.Name, zoneName)
		if len(r.Name) > 253 || !hostnameRE.MatchString(r.Name) {
			errs = append(errs, apiError{Code: 9000, Message: "DNS name is invalid."})
		}
	}
	switch r.Type {
	case "A":
		ip := net.ParseIP(r.Content)
		if ip == nil || ip.To4() == nil || strings.Contains(r.Content, ":") {
			errs = append(errs, apiError{Code: 9005, Message: "Content for A record must be a valid IPv4 address."})
		} else {
			r.Content = ip.To4().String()
		}
	case "AAAA":
		ip := net.ParseIP(r.Content)
		if ip == nil || !strings.Contains(r.Content, ":") {
			errs = append(errs, apiError{Code: 9006, Message: "Content for AAAA record must be a valid IPv6 address."})
		} else {
			r.Content = ip.String()
		}
	case "CNAME":
		c := strings.TrimSuffix(strings.ToLower(r.Content), ".")
		if len(c) == 0 || len(c) > 253 || !hostnameRE.MatchString(c) {
			errs = append(errs, apiError{Code: 9007, Message: "Content for CNAME record is invalid."})
		} else {
			r.Content = c
		}
	case "TXT":
		if r.Content == "" {
			errs = append(errs, apiError{Code: 9008, Message: "Content for TXT record is invalid."})
		} else if len(r.Content) > maxTXTLen {
			errs = append(errs, apiError{Code: 9100, Message: fmt.Sprintf("Content for TXT record is too long (max %d characters).", maxTXTLen)})
		}
	default:
		if r.Content == "" {
			errs = append(errs, apiError{Code: 9009, Message: "Content is required."})
		}
	}
	if r.TTL != 1 && (r.TTL < 60 || r.TTL > 86400) {
		errs = append(errs, apiError{Code: 9021, Message: "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic."})
	}
	if r.Proxied && !proxiable(r.Type) {
		errs = append(errs, apiError{Code: 9004, Message: "This record type cannot be proxied."})
	}
	if len(r.Comment) > maxCommentLen {
		errs = append(errs, apiError{Code: 9102, Message: fmt.Sprintf("DNS record comment is too long (max %d characters).", maxCommentLen)})
	}
	return errs
}

// hostnameRE accepts LDH labels, underscores (as in _dmarc) and a leading wildcard label.
var hostnameRE = regexp.MustCompile(`^(\*\.)?([a-z0-9_]([a-z0-9_\-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_\-]{0,61}[a-z0-9_])?$`)

// conflict reports the error the API answers when r cannot coexist with the zone's records.
func conflict(z *zone, r *Record) *apiError {
	for id, o := range z.records {
		if id == r.ID || o.Name != r.Name {
			continue
		}
		switch {
		case r.Type == "CNAME" && o.Type == "CNAME":
			if o.Content == r.Content {
				return &apiError{Code: 81058, Message: "An identical record already exists."}
			}
			return &apiError{Code: 81053, Message: "An A, AAAA, or CNAME record with that host already exists."}
		case r.Type == "CNAME" && (o.Type == "A" || o.Type == "AAAA"):
			return &apiError{Code: 81053, Message: "An A, AAAA, or CNAME record with that host already exists."}
		case o.Type == "CNAME" && (r.Type == "A" || r.Type == "AAAA"):
			return &apiError{Code: 81054, Message: "A CNAME record with that host already exists."}
		case o.Type == r.Type && o.Content == r.Content:
			if r.Type == "TXT" {
				return &apiError{Code: 81057, Message: "Record already exists."}
			}
			return &apiError{Code: 81058, Message: "An identical record already exists."}
		}
	}
	return nil
}

func proxiable(t string) bool { return t == "A" || t == "AAAA" || t == "CNAME" }

// normalizeName turns a name as sent ("www", "@", "www.example.com.") into the stored FQDN.
func normalizeName(name, zoneName string) string {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	switch {
	case n == "@" || n == zoneName:
		return zoneName
	case strings.HasSuffix(n, "."+zoneName):
		return n
	}
	return n + "." + zoneName
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
