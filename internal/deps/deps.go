package deps

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/cloudflare/cloudflare-go"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/moby/moby/client"
	_ "github.com/moby/moby/api/types/container"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/spf13/cobra"
	_ "github.com/traefik/paerser/cli"
	_ "github.com/traefik/paerser/env"
	_ "github.com/traefik/paerser/file"
	_ "github.com/traefik/paerser/flag"
	_ "go.etcd.io/bbolt"
	_ "go.etcd.io/raft/v3"
	_ "go.etcd.io/raft/v3/raftpb"
	_ "go.mongodb.org/mongo-driver/v2/mongo"
	_ "go.mongodb.org/mongo-driver/v2/bson"
	_ "k8s.io/client-go/util/workqueue"
	_ "sigs.k8s.io/controller-runtime/pkg/reconcile"
)
