package pki_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/constellation-sh/constellation/pkg/pki"
)

// The first agent of a cluster: create the CA, get a renewing node certificate, serve.
func Example_bootstrap() {
	dataDir := "/var/lib/constellation"
	ca, created, err := pki.LoadOrCreateCA(dataDir, time.Now)
	if err != nil {
		panic(err)
	}
	if created {
		slog.Info("created the cluster CA", "fingerprint", ca.Fingerprint()) // what ctl pins
	}
	holder, err := pki.NewCertHolder(ca, pki.NodeParams{
		Name: "node-1",
		IPs:  []net.IP{net.ParseIP("192.0.2.10")}, // the advertise address
	}, dataDir, time.Now, slog.Default())
	if err != nil {
		panic(err)
	}
	go holder.Run(context.Background(), time.Hour)

	mux := http.NewServeMux()
	apiTokens := func() [][]byte { return [][]byte{[]byte("the admin token")} }
	mux.Handle(pki.CAProofPath, pki.CAProofHandler(ca.Certificate().Raw, apiTokens)) // unauthenticated
	mux.HandleFunc("/apis/v1/", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			_ = r.TLS.VerifiedChains[0][0].Subject.CommonName // a member, by its certificate
		}
	})
	ln, _ := net.Listen("tcp", ":7480")
	srv := &http.Server{Handler: mux, TLSConfig: holder.APIServerTLS()}
	go func() { _ = srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()

	// Raft: holder.PeerServerTLS() on the listener, holder.ClientTLS("") to dial peers.
	// Agent-to-agent HTTP: &http.Transport{TLSClientConfig: holder.ClientTLS("")}.
}

// A joiner with only an admin token: learn the CA by proof, fetch the join bundle over
// verified TLS, become a member.
func Example_join() {
	ctx := context.Background()
	token := "the admin token"
	pool, caCert, err := pki.FetchCA(ctx, "https://192.0.2.10:7480", token, "" /* or a pinned fingerprint */)
	if err != nil {
		panic(err)
	}
	_ = pool // RootCAs for the token-carrying request, or:
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.TrustTLS(caCert, "")}}
	_ = client // POST /cluster/join with the token; the answer body is a JoinBundle

	var body []byte
	bundle, err := pki.DecodeJoinBundle(body)
	if err != nil {
		panic(err)
	}
	ca, _ := bundle.CA()
	if err := ca.Save("/var/lib/constellation"); err != nil {
		panic(err)
	}
	// ...then NewCertHolder as in the bootstrap, and bundle.ClusterSecret, bundle.GossipKey.
}
