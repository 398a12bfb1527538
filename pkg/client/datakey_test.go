package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/constellation-sh/constellation/pkg/client"
)

func TestRotateDataKeyStream(t *testing.T) {
	answers := map[string]string{
		"/done": `{"progress":{"done":1,"total":2}}` + "\n" + `{"progress":{"done":2,"total":2}}` + "\n" +
			`{"result":{"activeKeyID":"dk-2","dropped":["dk-1"],"resealed":2,"secrets":2}}` + "\n",
		"/cut":    `{"progress":{"done":1,"total":2}}` + "\n",
		"/failed": `{"progress":{"done":1,"total":2}}` + "\n" + `{"error":"secrets/db: re-seal: store: unavailable"}` + "\n",
	}
	for path, body := range answers {
		t.Run(path, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != path+client.DataKeyRotatePath {
					http.Error(w, `{"error":"wrong route"}`, http.StatusNotFound)
					return
				}
				_, _ = io.WriteString(w, body)
			}))
			defer srv.Close()
			c, err := client.New(client.Config{Server: srv.URL + path})
			if err != nil {
				t.Fatal(err)
			}
			var seen []client.DataKeyProgress
			res, err := c.RotateDataKey(context.Background(), func(p client.DataKeyProgress) { seen = append(seen, p) })
			switch path {
			case "/done":
				if err != nil || res.ActiveKeyID != "dk-2" || res.Resealed != 2 || len(res.Dropped) != 1 || len(seen) != 2 || seen[1].Done != 2 {
					t.Fatalf("res %+v, progress %+v, err %v", res, seen, err)
				}
			case "/cut":
				if !errors.Is(err, client.ErrRotationCut) || len(seen) != 1 {
					t.Fatalf("err %v, progress %+v; want ErrRotationCut", err, seen)
				}
			case "/failed":
				if err == nil || err.Error() != "secrets/db: re-seal: store: unavailable" {
					t.Fatalf("err %v", err)
				}
			}
		})
	}
}
