package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A client pointed with http:// at a TLS server is told to use https://; one whose server
// cannot prove it knows the token gets a TrustError (it reached the server: not a ConnError)
// and sends nothing to the API.
func TestTLSErrors(t *testing.T) {
	var apiCalls int
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/apis/") {
			apiCalls++
		}
		http.NotFound(w, r)
	}))
	defer ts.Close()
	ctx := context.Background()

	plain, err := New(Config{Server: strings.Replace(ts.URL, "https://", "http://", 1), Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = plain.List(ctx, "services", "")
	if err == nil || !strings.Contains(err.Error(), "speaks HTTPS") || !strings.Contains(err.Error(), "--server "+ts.URL) {
		t.Fatalf("http:// to a TLS server: %v", err)
	}

	c, err := New(Config{Server: ts.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.List(ctx, "services", "")
	var te *TrustError
	var ce *ConnError
	if !errors.As(err, &te) || errors.As(err, &ce) {
		t.Fatalf("untrusted server: %T %v, want a TrustError", err, err)
	}
	if apiCalls != 0 {
		t.Fatalf("%d API requests reached a server the client does not trust", apiCalls)
	}
}
