package apiserver

import (
	"context"
	"testing"
)

// Configs, Jobs and CronJobs are served like every kind; a bad spec.files entry or schedule is
// a 422 naming the field, and changes nothing.
func TestConfigJobCronJobKinds(t *testing.T) {
	ts, st := newServer(t, nil)
	for _, tc := range []struct {
		path, body string
		code       int
		field      string
	}{
		{"/apis/v1/configs/prom", `{"apiVersion":"constellation/v1","kind":"Config","metadata":{"name":"prom"},"spec":{"data":{"prometheus.yml":"scrape: {}"},"binaryData":{"logo.png":"AAEC"}}}`, 201, ""},
		{"/apis/v1/services/prom", `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"prom"},"spec":{"image":"prom/prometheus:v3",
			"files":[{"config":"prom","key":"prometheus.yml","path":"/etc/prometheus/prometheus.yml"},{"secret":"tls","path":"etc/key.pem","mode":"0400"}]}}`, 422, "spec.files[1].path"},
		{"/apis/v1/services/prom", `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"prom"},"spec":{"image":"prom/prometheus:v3",
			"files":[{"config":"prom","secret":"tls"}]}}`, 422, "spec.files[0]"},
		{"/apis/v1/services/prom", `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"prom"},"spec":{"image":"prom/prometheus:v3",
			"files":[{"config":"prom","key":"prometheus.yml","path":"/etc/prometheus/prometheus.yml"},{"secret":"tls","mode":"0440"}]}}`, 201, ""},
		{"/apis/v1/jobs/migrate", `{"apiVersion":"constellation/v1","kind":"Job","metadata":{"name":"migrate"},"spec":{"image":"app:2","args":["migrate"],"backoffLimit":2}}`, 201, ""},
		{"/apis/v1/jobs/bad", `{"apiVersion":"constellation/v1","kind":"Job","metadata":{"name":"bad"},"spec":{"image":"app:2","backoffLimit":-1}}`, 422, "spec.backoffLimit"},
		{"/apis/v1/cronjobs/nightly", `{"apiVersion":"constellation/v1","kind":"CronJob","metadata":{"name":"nightly"},"spec":{"schedule":"61 3 * * *","jobTemplate":{"image":"restic:0.17"}}}`, 422, "spec.schedule"},
		{"/apis/v1/cronjobs/nightly", `{"apiVersion":"constellation/v1","kind":"CronJob","metadata":{"name":"nightly"},"spec":{"schedule":"30 3 * * *","timeZone":"Europe/Paris","jobTemplate":{"image":"restic:0.17"}}}`, 201, ""},
	} {
		before, _ := st.Revision(context.Background())
		code, out := do(t, ts, "PUT", tc.path, tc.body)
		if code != tc.code {
			t.Fatalf("PUT %s: %d %v, want %d", tc.path, code, out, tc.code)
		}
		if tc.field != "" {
			if out["field"] != tc.field {
				t.Fatalf("PUT %s: field %v, want %s (%v)", tc.path, out["field"], tc.field, out)
			}
			if after, _ := st.Revision(context.Background()); after != before {
				t.Fatalf("PUT %s: a refused write moved the revision %d -> %d", tc.path, before, after)
			}
		}
	}
	code, out := do(t, ts, "GET", "/apis/v1/services/prom", "")
	files := out["spec"].(map[string]any)["files"].([]any)
	if code != 200 || files[1].(map[string]any)["path"] != "/run/secrets/tls" || files[1].(map[string]any)["mode"] != "0440" || files[0].(map[string]any)["mode"] != "0444" {
		t.Fatalf("stored files %d %v", code, files)
	}
	for _, plural := range []string{"configs", "jobs", "cronjobs"} {
		code, out := do(t, ts, "GET", "/apis/v1/"+plural, "")
		if code != 200 || len(out["items"].([]any)) != 1 {
			t.Fatalf("list %s: %d %v", plural, code, out)
		}
	}
	code, out = do(t, ts, "GET", "/apis/v1/cronjobs/nightly", "")
	if sp := out["spec"].(map[string]any); code != 200 || sp["concurrencyPolicy"] != "Allow" || sp["successfulJobsHistoryLimit"].(float64) != 3 {
		t.Fatalf("cronjob defaults %d %v", code, sp)
	}
}
