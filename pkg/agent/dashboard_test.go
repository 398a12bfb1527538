package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

// dashboardPath is the Grafana dashboard shipped in docs/ (docs/grafana.md).
var dashboardPath = filepath.Join("..", "..", "docs", "grafana", "constellation.json")

// promqlKeywords are the words of PromQL that are not metric names when they are not followed
// by "(": aggregation operators (which may take "by (...)" before their argument), set and
// vector-matching operators, modifiers, and the special floats.
var promqlKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
	"inf": true, "nan": true,
}

// labelListKeywords are followed by a parenthesised list of label names, not an expression.
var labelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

func isIdentStart(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || (c >= '0' && c <= '9') }

// skipString returns the index after the quoted string starting at s[i] ('...', "..." with
// backslash escapes, `...` raw).
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if q != '`' && s[j] == '\\' {
			j++
			continue
		}
		if s[j] == q {
			return j + 1
		}
	}
	return len(s)
}

// skipBalanced returns the index after the bracket closing the one at s[i], skipping strings.
func skipBalanced(s string, i int, open, close byte) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"' || c == '\'' || c == '`':
			j = skipString(s, j) - 1
		case c == open:
			depth++
		case c == close:
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

var nameMatcher = regexp.MustCompile(`__name__\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"`)

// promqlMetricNames returns the metric names expr selects, in order of first appearance: every
// identifier that is not a function (followed by "("), a keyword, a label name inside {} or
// after by/without/on/ignoring/group_left/group_right, a string, a number or duration, or a
// Grafana variable ($node, ${datasource}, [$__rate_interval]); plus names given as
// {__name__="..."}. It is no PromQL parser: it knows just enough to find what a dashboard
// queries.
func promqlMetricNames(expr string) []string {
	var out []string
	add := func(n string) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(s, i)
		case c == '{':
			end := skipBalanced(s, i, '{', '}')
			for _, m := range nameMatcher.FindAllStringSubmatch(s[i:end], -1) {
				add(m[1])
			}
			i = end
		case c == '[':
			i = skipBalanced(s, i, '[', ']')
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				i = skipBalanced(s, i, '{', '}')
				continue
			}
			for i < len(s) && isIdentChar(s[i]) {
				i++
			}
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9'):
			// Numbers (1, 0.99, 1e3, 0x1f) and durations (5m, 1h30m): the run of word characters
			// and dots, with a sign after an exponent.
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.' || ((s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E'))) {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
				k++
			}
			followedByParen := k < len(s) && s[k] == '('
			switch {
			case labelListKeywords[strings.ToLower(word)]:
				if followedByParen {
					k = skipBalanced(s, k, '(', ')')
				}
				i = k
				continue
			case followedByParen, promqlKeywords[strings.ToLower(word)]:
				// a function or an aggregation
			default:
				add(word)
			}
			i = j
		default:
			i++
		}
	}
	return out
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`constellation_gossip_members{instance=~"$node"}`, []string{"constellation_gossip_members"}},
		{`sum by (controller, outcome) (rate(constellation_reconcile_total{instance=~"$node", outcome=~"error|terminal"}[$__rate_interval]))`,
			[]string{"constellation_reconcile_total"}},
		{`histogram_quantile(0.99, sum by (le, instance) (rate(constellation_store_wal_fsync_seconds_bucket[5m])))`,
			[]string{"constellation_store_wal_fsync_seconds_bucket"}},
		{`sum without (instance) (rate(a_total[1h30m] offset 1d)) / on (job) group_left (node) b_info`, []string{"a_total", "b_info"}},
		{`max(x) by (lease) - ignoring(le) y > bool 0 and z unless w or v`, []string{"x", "y", "z", "w", "v"}},
		{`topk(3, sum by (service) (rate(c_total{label="by (x) sum(", other='q"uote'}[${__interval}])))`, []string{"c_total"}},
		{`{__name__="named_metric", job="j"} + 1e3 * 0x1f - .5 + 2.5e-3`, []string{"named_metric"}},
		{`count_values("value", build_info) + quantile(0.9, lat_seconds) + vector(1) + time() + NaN + Inf`, []string{"build_info", "lat_seconds"}},
		{`rate(m_total[5m:1m]) @ 1609746000 + label_replace(n, "dst", "$1", "src", "(.*)")`, []string{"m_total", "n"}},
		// The misspelling a dashboard must not get away with.
		{`sum by (result) (rate(constellation_traefik_render_total{instance=~"$node"}[$__rate_interval]))`, []string{"constellation_traefik_render_total"}},
		{`a:recording:rule_5m + sum (b)`, []string{"a:recording:rule_5m", "b"}},
	} {
		got := promqlMetricNames(tc.expr)
		if !slices.Equal(got, tc.want) {
			t.Errorf("promqlMetricNames(%s)\n got %q\nwant %q", tc.expr, got, tc.want)
		}
	}
}

// knownMetrics is what an agent's registry exports: every descriptor's name (vectors with no
// child yet included, which Gather leaves out), and the type of the families Gather returned.
type knownMetrics struct {
	names map[string]bool
	types map[string]dto.MetricType
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

func registryMetrics(t *testing.T, reg *prometheus.Registry) knownMetrics {
	t.Helper()
	k := knownMetrics{names: map[string]bool{}, types: map[string]dto.MetricType{}}
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	for d := range ch {
		m := descName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("descriptor without a name: %s", d)
		}
		k.names[m[1]] = true
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		k.names[mf.GetName()] = true
		k.types[mf.GetName()] = mf.GetType()
	}
	return k
}

// missing says why name is not a series the agent exports, "" when it is. name_bucket, _sum
// and _count are series of the histogram or summary family name: accepted when the family
// exists and is one, or is a vector with no child yet (whose type Gather cannot tell) not
// named like a counter (_total).
func (k knownMetrics) missing(name string) string {
	if k.names[name] {
		return ""
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suf)
		if !ok || !k.names[base] {
			continue
		}
		typ, gathered := k.types[base]
		switch {
		case !gathered && strings.HasSuffix(base, "_total"):
			return fmt.Sprintf("%s is a counter (by its name), which has no %s series", base, suf)
		case !gathered, typ == dto.MetricType_HISTOGRAM, typ == dto.MetricType_GAUGE_HISTOGRAM:
			return ""
		case typ == dto.MetricType_SUMMARY && suf != "_bucket":
			return ""
		}
		return fmt.Sprintf("%s is a %s, which has no %s series", base, typ, suf)
	}
	return "no such metric"
}

// dashboard is the part of Grafana's dashboard JSON the test reads.
type dashboard struct {
	SchemaVersion int    `json:"schemaVersion"`
	Title         string `json:"title"`
	UID           string `json:"uid"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         *int           `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	GridPos    *gridPos       `json:"gridPos"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type gridPos struct {
	H, W, X, Y *int
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// allPanels flattens rows (collapsed rows hold their panels).
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// TestDashboardIsValid checks the dashboard's shape: schema version, the ${datasource}
// variable of type datasource and the node variable from label values; every panel with a
// unique id, a type, a title and a grid position inside the 24 columns; every panel but rows
// on ${datasource} with targets that each have a refId (unique in the panel), an expr and the
// datasource.
func TestDashboardIsValid(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 || d.Title == "" || d.UID == "" {
		t.Errorf("schemaVersion %d, title %q, uid %q", d.SchemaVersion, d.Title, d.UID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil || q != v.Definition {
			t.Errorf("variable %s: query %s, want the string of its definition %q (what the metrics test checks)", v.Name, v.Query, v.Definition)
		}
		if v.Name == "node" && (!strings.HasPrefix(v.Definition, "label_values(") || v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable node: definition %q, datasource %+v", v.Definition, v.Datasource)
		}
	}
	if vars["datasource"] != "datasource" || vars["node"] != "query" {
		t.Errorf("variables %v: want datasource (datasource) and node (query)", vars)
	}
	ids := map[int]string{}
	ps := allPanels(d.Panels)
	if len(ps) < 20 {
		t.Fatalf("%d panels", len(ps))
	}
	for i, p := range ps {
		where := fmt.Sprintf("panel %d %q", i, p.Title)
		if p.ID == nil || p.Type == "" || p.Title == "" || p.GridPos == nil || p.GridPos.H == nil || p.GridPos.W == nil || p.GridPos.X == nil || p.GridPos.Y == nil {
			t.Errorf("%s: needs id, type, title and gridPos {h, w, x, y}", where)
			continue
		}
		if other, dup := ids[*p.ID]; dup {
			t.Errorf("%s: id %d also used by %q", where, *p.ID, other)
		}
		ids[*p.ID] = p.Title
		if g := p.GridPos; *g.W <= 0 || *g.H <= 0 || *g.X < 0 || *g.X+*g.W > 24 {
			t.Errorf("%s: gridPos %d,%d %dx%d outside the 24 columns", where, *g.X, *g.Y, *g.W, *g.H)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("%s: datasource %+v, want prometheus ${datasource}", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for j, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" || tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("%s target %d: refId %q (unique), expr %q and datasource %+v needed", where, j, tg.RefID, tg.Expr, tg.Datasource)
			}
			refs[tg.RefID] = true
		}
	}
}

// labelValuesQuery matches Grafana's label_values(SELECTOR, LABEL).
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// dashboardQueries returns every PromQL expression of the dashboard with where it is.
func dashboardQueries(t *testing.T, d dashboard) map[string]string {
	t.Helper()
	qs := map[string]string{}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			qs[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesQuery.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		qs["variable "+v.Name] = m[1]
	}
	return qs
}

// TestDashboardQueriesExistInAWholeAgent starts a whole agent with every part that exports
// metrics: the raft store, gossip, the controllers under the controller Lease, the node
// reconciler on the local engine, the Cloudflare client and DNS controller (on the fake API),
// and the mesh plane (proxy, HTTP failover proxy, name server). It reads its registry's
// descriptors (vectors with no child yet are not in Gather's output, but their descriptors
// are) and fails listing every metric the dashboard queries that the agent does not export.
func TestDashboardQueriesExistInAWholeAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a raft agent; run without -short")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CONSTELLATION_TEST_STRICT") != "" {
			t.Fatal("needs root: the mesh plane, whose metrics the dashboard shows, adds addresses to lo and listens on port 53")
		}
		t.Skip("needs root: the mesh plane, whose metrics the dashboard shows, adds addresses to lo and listens on port 53")
	}
	d := loadDashboard(t)
	queries := dashboardQueries(t, d)

	const zone, cfToken = "example.com", "cf-dashboard-token"
	cf := cloudflare.New(cloudflare.WithToken(cfToken, zone))
	cf.AddZone(zone)
	apiURL, stopCF := cf.Start()
	defer stopCF()
	cfTokenFile := filepath.Join(t.TempDir(), "cloudflare-token")
	if err := os.WriteFile(cfTokenFile, []byte(cfToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raft := raftAgents(t)
	a, _ := startAgent(t, fmt.Sprintf("dash%d", os.Getpid()%10000), func(c *config.Config) {
		raft("")(c)
		c.Docker.Disabled = false
		c.Mesh.Disabled, c.Mesh.CIDR = false, "10.233.0.0/24" // a prefix no other test uses
		c.DNS.Cloudflare.TokenFile, c.DNS.Cloudflare.APIURL = cfTokenFile, apiURL
	})
	c, err := client.New(client.Config{Server: a.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	// The controllers run (and their loops report) once the Lease is held and the Node is
	// registered; the lease metrics need a Lease in the store.
	eventually(t, "the controller lease held and stored", func() bool {
		if !a.controllerLease.IsLeader() {
			return false
		}
		_, err := c.Get(context.Background(), v1.KindLease, v1.LeaseController)
		return err == nil
	})

	// The lease metrics (leasemetrics.go) say this agent holds the controller Lease.
	eventually(t, "constellation_lease_held{lease=controller} 1", func() bool {
		mfs, err := a.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "constellation_lease_held" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == v1.LeaseController && m.GetGauge().GetValue() == 1 {
					return true
				}
			}
		}
		return false
	})

	known := registryMetrics(t, a.reg)
	if len(known.names) < 50 {
		t.Fatalf("the registry describes %d metrics: not a whole agent", len(known.names))
	}
	var problems []string
	used := 0
	for where, expr := range queries {
		names := promqlMetricNames(expr)
		if len(names) == 0 {
			problems = append(problems, fmt.Sprintf("%s: queries no metric: %s", where, expr))
		}
		for _, n := range names {
			used++
			if why := known.missing(n); why != "" {
				problems = append(problems, fmt.Sprintf("%s: %s: %s", where, n, why))
			}
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		t.Fatalf("%d of the dashboard's metric references are not exported by the agent:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	t.Logf("%d queries, %d metric references, all among the agent's %d metrics", len(queries), used, len(known.names))
}

// TestDashboardCheckCatchesAMisspelling runs the same check on a misspelled query against the
// agent-independent part of a registry (so that the check above can fail).
func TestDashboardCheckCatchesAMisspelling(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "constellation_traefik_renders_total"}, []string{"result"}),
		prometheus.NewHistogram(prometheus.HistogramOpts{Name: "constellation_store_wal_fsync_seconds"}),
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "constellation_gossip_members"}),
		prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "constellation_proxy_request_duration_seconds"}, []string{"service"}),
	)
	k := registryMetrics(t, reg)
	for expr, want := range map[string]string{
		`sum by (result) (rate(constellation_traefik_renders_total{result="error"}[5m]))`:                               "",
		`sum by (result) (rate(constellation_traefik_render_total{result="error"}[5m]))`:                                "constellation_traefik_render_total: no such metric",
		`histogram_quantile(0.99, sum by (le) (rate(constellation_store_wal_fsync_seconds_bucket[5m])))`:                "",
		`rate(constellation_store_wal_fsync_seconds_count[5m])`:                                                         "",
		`histogram_quantile(0.99, sum by (le) (rate(constellation_store_wal_fsyncs_seconds_bucket[5m])))`:               "constellation_store_wal_fsyncs_seconds_bucket: no such metric",
		`constellation_gossip_members_count`:                                                                            "constellation_gossip_members_count: constellation_gossip_members is a GAUGE, which has no _count series",
		`histogram_quantile(0.5, sum by (service, le) (rate(constellation_proxy_request_duration_seconds_bucket[5m])))`: "",
		`constellation_traefik_renders_total_bucket`:                                                                    "constellation_traefik_renders_total_bucket: constellation_traefik_renders_total is a counter (by its name), which has no _bucket series",
	} {
		var got []string
		for _, n := range promqlMetricNames(expr) {
			if why := k.missing(n); why != "" {
				got = append(got, n+": "+why)
			}
		}
		if strings.Join(got, "; ") != want {
			t.Errorf("%s: %q, want %q", expr, got, want)
		}
	}
}
