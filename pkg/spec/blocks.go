package spec

import (
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Building blocks: the Services every stack repeats, written once with the settings and health
// checks their upstream images document, so a stack in specs/ reads like a page. Each takes
// extra options last, which apply after the block's own and so can override them.

// Ref names a Secret's key, for blocks that take a credential by reference.
type Ref struct{ Secret, Key string }

// Key returns a Ref.
func Key(secret, key string) Ref { return Ref{Secret: secret, Key: key} }

// Postgres is a PostgreSQL server (the official image's conventions): database db owned by
// user, whose password comes from the Secret, data on the named volume NAME-data (so the
// replica stays with its data: placement.volumes sticky), pg_isready as the health check, port
// "postgres" 5432.
func Postgres(name, image, db, user string, password Ref, opts ...ServiceOption) *v1.Service {
	base := []ServiceOption{
		Port("postgres", 5432),
		Env("POSTGRES_DB", db),
		Env("POSTGRES_USER", user),
		EnvFromSecret("POSTGRES_PASSWORD", password.Secret, password.Key),
		Volume(name+"-data", "/var/lib/postgresql/data"),
		ExecHealth(10*time.Second, "pg_isready", "-U", user, "-d", db),
		HealthTiming(5*time.Second, 5, 20*time.Second),
		// Postgres shuts down cleanly on SIGINT ("fast" mode) and needs time to checkpoint.
		StopSignal("SIGINT"),
		StopGracePeriod(60 * time.Second),
		ShmSizeMB(128),
	}
	return Service(name, image, append(base, opts...)...)
}

// Redis is a single Redis server with append-only persistence on NAME-data and redis-cli ping
// as the health check, port "redis" 6379. For failover use RedisReplicaSet.
func Redis(name, image string, opts ...ServiceOption) *v1.Service {
	base := []ServiceOption{
		Port("redis", 6379),
		Args("redis-server", "--appendonly", "yes", "--save", "60", "1"),
		Volume(name+"-data", "/data"),
		ExecHealth(10*time.Second, "redis-cli", "ping"),
		HealthTiming(3*time.Second, 5, 5*time.Second),
	}
	return Service(name, image, append(base, opts...)...)
}

// RedisReplicaSet is replicas Redis servers (one per node) and the ReplicaSet that runs Redis
// Sentinel over them (docs/replicasets.md): clients reach the master at NAME-primary. The
// sentinel Service NAME-sentinel is created by the replica-set controller. Volumes are
// recreated on a node change: a new replica resynchronises from the master.
func RedisReplicaSet(name, image string, replicas int32, opts ...ServiceOption) (*v1.Service, *v1.ReplicaSet) {
	base := []ServiceOption{
		Replicas(replicas),
		MaxPerNode(1),
		VolumePolicy(v1.VolumesRecreate),
	}
	svc := Redis(name, image, append(base, opts...)...)
	rs := &v1.ReplicaSet{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindReplicaSet}}
	rs.Metadata.Name = name
	rs.Spec = v1.ReplicaSetSpec{Engine: v1.EngineRedis, Members: []string{name},
		Redis: &v1.RedisReplicaSet{MasterName: name, Sentinel: name + "-sentinel"}}
	return svc, rs
}

// WebApp is a web application on port "http" containerPort, reached at https://host/ through
// Traefik's websecure entry point with a certificate from the "letsencrypt" resolver (the
// Coolify proxy stack's), and health-checked over HTTP at healthPath (empty: no check).
func WebApp(name, image, host string, containerPort int32, healthPath string, opts ...ServiceOption) *v1.Service {
	base := []ServiceOption{
		Port("http", containerPort),
		HTTPSRoute(host, "http", "letsencrypt"),
	}
	if healthPath != "" {
		base = append(base, HTTPHealth(healthPath, "http", 15*time.Second), HealthTiming(5*time.Second, 5, 30*time.Second))
	}
	return Service(name, image, append(base, opts...)...)
}

// EgressVia makes the Service an egress dependent of gateway (the WARP stack's): its containers
// share the gateway's network namespace, so all their traffic leaves through it, and they start
// only once the gateway is healthy.
func EgressVia(gateway string) ServiceOption {
	return func(s *v1.Service) {
		NetworkOf(gateway)(s)
		DependsOnHealthy(gateway)(s)
	}
}
