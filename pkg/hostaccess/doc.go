// Package hostaccess decides whether a Service may reach into the host it runs on: bind mounts,
// privileged containers, host namespaces and capabilities beyond Docker's defaults.
//
// The rules (docs/security.md "Host access"):
//   - every bind mount, device, privileged, hostNetwork, hostPID, hostIPC and capAdd beyond Docker's default set is
//     host access and needs the Service's one opt-in field, spec.hostAccess;
//   - the sensitive ones also need the agent to allow them: privileged, host namespaces and added
//     capabilities need --security.allowHostAccess; a bind mount of a sensitive path (/, /etc,
//     /proc, /sys, /dev, /boot, /root, system binaries, /run, the Docker and containerd sockets
//     and state, the agent's data dir, or a parent of any of them) needs
//     --security.allowHostAccess or the path under an entry of --security.hostPaths.
//
// Paths are compared lexically after cleaning ("/etc/../etc" is "/etc", "/var/run//docker.sock"
// is "/var/run/docker.sock"). Admission cannot see the nodes' file systems, so symlinks are not
// resolved there; the node that creates the container checks again with its own flags and with
// the symlinks of its own file system resolved (Policy.Resolve).
//
// Check is pure and imports only api/v1: the agent's admission (pkg/agent) and the node
// reconciler (controllers/node) both call it. It must not import anything else of ours.
package hostaccess
