package ctl_test

import (
	"strings"
	"testing"
)

// TestCompletionScripts: cobra's generators for each shell, naming the program.
func TestCompletionScripts(t *testing.T) {
	c := newCluster(t)
	for shell, marker := range map[string]string{"bash": "__start_ctl", "zsh": "#compdef ctl", "fish": "complete -c ctl"} {
		r := c.run(t, "", "completion", shell)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, marker) || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q, marker %q present: %v", shell, r.code, len(r.stdout), r.stderr, marker, strings.Contains(r.stdout, marker))
		}
	}
	expect(t, c.run(t, "", "completion", "tcsh"), 1, "", "error: completion: unknown shell \"tcsh\" (want bash, zsh or fish)\n")
	expect(t, c.run(t, "", "completion"), 1, "", "error: completion needs one shell: bash, zsh or fish (got 0 arguments)\n")
	if got, _ := c.complete(t, nil, "completion", ""); strings.Join(got, " ") != "bash zsh fish" {
		t.Errorf("shells offered: %q", got)
	}
}

// complete runs cobra's hidden __complete command as the shell scripts do and returns the
// offered words and the directive line.
func (c *cluster) complete(t *testing.T, extra map[string]string, words ...string) ([]string, string) {
	t.Helper()
	r := c.runEnv(t, "", extra, append([]string{"__complete"}, words...)...)
	if r.code != 0 || strings.Contains(strings.ToLower(r.stderr), "error") {
		t.Fatalf("__complete %q: exit %d stderr %q", words, r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

// TestDynamicCompletion: kinds and object names come from the server; nothing, and no error,
// when it cannot be reached.
func TestDynamicCompletion(t *testing.T) {
	c := newCluster(t)
	expect(t, c.run(t, helloV2, "apply", "-f", "-"), 0, "service/hello created\n", "")
	expect(t, c.run(t, "", "apply", "-f", "testdata/jsondir"), 0, "service/web created\ndnsrecord/www created\nlease/lb created\n", "")
	const noFile = ":4" // cobra.ShellCompDirectiveNoFileComp
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"get", "svc", ""}, "hello web"},
		{[]string{"get", "services", "h"}, "hello"},
		{[]string{"get", "svc/w"}, "svc/web"},
		{[]string{"get", "dns", ""}, "www"},
		{[]string{"get", "r"}, "replicasets rs routes"},
		{[]string{"describe", "r"}, "replicasets rs"},
		{[]string{"describe", "svc", ""}, "hello web"},
		{[]string{"describe", "svc", "hello", ""}, ""},
		{[]string{"delete", "svc", "hello", ""}, "web"},
		{[]string{"get", "nope", ""}, ""},
		{[]string{"rollout", "status", ""}, "hello web"},
		{[]string{"rollout", "restart", "svc/"}, "svc/hello svc/web"},
		{[]string{"rollout", "history", "dns/"}, ""},
		{[]string{"rollout", "undo", "he"}, "hello"},
		{[]string{"scale", "w"}, "web"},
		{[]string{"logs", ""}, "hello web"},
		{[]string{"exec", "hello", "--", ""}, ""},
		{[]string{"exec", ""}, "hello web"},
	} {
		got, dir := c.complete(t, nil, tc.words...)
		if strings.Join(got, " ") != tc.want || dir != noFile {
			t.Errorf("__complete %q = %q %s, want %q %s", tc.words, got, dir, tc.want, noFile)
		}
	}
	if got, _ := c.complete(t, nil, "get", ""); strings.Join(got, " ") != "services svc dnsrecords dns leases replicasets rs nodes no secrets events ev configs cm jobs cronjobs cj routes" {
		t.Errorf("kinds offered: %q", got)
	}

	// The server is gone: no names, exit 0, nothing that looks like an error.
	down := map[string]string{"CONSTELLATION_SERVER": "http://127.0.0.1:1"}
	for _, words := range [][]string{{"get", "svc", ""}, {"rollout", "status", ""}, {"scale", "svc/"}} {
		if got, dir := c.complete(t, down, words...); len(got) != 0 || dir != noFile {
			t.Errorf("unreachable server: __complete %q = %q %s", words, got, dir)
		}
	}
	// A bad token: no names either.
	if got, _ := c.complete(t, map[string]string{"CONSTELLATION_TOKEN": "wrong"}, "get", "svc", ""); len(got) != 0 {
		t.Errorf("bad token: %q", got)
	}
}
