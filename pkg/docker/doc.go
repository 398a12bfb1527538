// Package docker is Constellation's access to a Docker engine, on github.com/moby/moby/client
// with the API version negotiated (engines here speak 1.41; the client's floor is 1.40).
//
// It owns two things:
//   - BuildCreateConfig, the pure translation of a Service replica into Docker's create
//     configuration (labels of the external contract, spec hash, env with Secret references
//     resolved through a caller-given func, ports published on ephemeral host ports, exec health
//     checks as Docker HEALTHCHECK, resources, networks, volumes, restart policy "no": the agent
//     restarts containers itself), golden-tested;
//   - Client, the real implementation of the small interfaces the controllers declare (list by
//     label, inspect, create, start, stop, remove, events, images, networks, volumes, log tails,
//     one stats sample computed as docker stats computes it (stats.go)),
//     which turns Docker's errors into this package's sentinel errors.
//
// HTTP and TCP health checks are not given to Docker: a FROM scratch image has no curl, so the
// agent probes them itself (controllers/node). Exec checks run inside the container and can only
// be Docker's.
//
// It must not import controllers or the store.
package docker
