// Command metrics is the monitoring stack (9 services): Prometheus, Grafana, Alertmanager,
// Loki, Pushgateway and blackbox-exporter once each, and node-exporter, cAdvisor and Promtail on
// every node (mode global), as their upstream documentation runs them in containers
// (https://github.com/prometheus/node_exporter#docker, https://github.com/google/cadvisor#quick-start-running-cadvisor-in-a-docker-container,
// https://grafana.com/docs/loki/latest/setup/install/docker/). The host mounts of the three
// node agents are host access (spec.hostAccess; the agents need --security.allowHostAccess).
//
// Each app's configuration file is a Config (config/*.yml, embedded) copied into its containers
// with spec.files: Prometheus scrapes every exporter of the stack and probes its HTTPS routes
// through the blackbox exporter, Alertmanager has one route, Loki stores on its volume, Promtail
// ships each node's logs to Loki, and Grafana starts with Prometheus, Loki and Alertmanager as
// data sources. Editing a file and applying again rolls the Services that read it.
//
// Create the Secret first: grafana: admin-password. Apply it with `ctl apply -f specs/metrics`.
package main

import (
	_ "embed"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"

	"github.com/constellation-sh/constellation/pkg/spec"
)

var (
	//go:embed config/prometheus.yml
	prometheusYML string
	//go:embed config/alertmanager.yml
	alertmanagerYML string
	//go:embed config/blackbox.yml
	blackboxYML string
	//go:embed config/loki.yaml
	lokiYAML string
	//go:embed config/promtail.yml
	promtailYML string
	//go:embed config/grafana-datasources.yaml
	grafanaDatasourcesYAML string
)

// nodeAgent is a global Service with host mounts: one replica on every node.
func nodeAgent(name, image string, port int32, opts ...spec.ServiceOption) *v1.Service {
	base := []spec.ServiceOption{
		spec.Global(),
		spec.Port("metrics", port),
		spec.HostAccess(),
		spec.HTTPHealth("/metrics", "metrics", 30*time.Second),
	}
	return spec.Service(name, image, append(base, opts...)...)
}

func main() {
	spec.Print(
		spec.Config("prometheus", map[string]string{"prometheus.yml": prometheusYML}),
		spec.Config("alertmanager", map[string]string{"alertmanager.yml": alertmanagerYML}),
		spec.Config("blackbox-exporter", map[string]string{"config.yml": blackboxYML}),
		spec.Config("loki", map[string]string{"loki.yaml": lokiYAML}),
		spec.Config("promtail", map[string]string{"config.yml": promtailYML}),
		spec.Config("grafana-datasources", map[string]string{"datasources.yaml": grafanaDatasourcesYAML}),
		spec.WebApp("prometheus", "prom/prometheus:v2.55.1", "prometheus.example.com", 9090, "/-/healthy",
			spec.Args("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
				"--storage.tsdb.retention.time=30d", "--web.enable-lifecycle"),
			spec.ConfigFile("/etc/prometheus/prometheus.yml", "prometheus", "prometheus.yml"),
			spec.Volume("prometheus-data", "/prometheus"),
			spec.User("65534:65534"),
		),
		spec.WebApp("grafana", "grafana/grafana:11.3.1", "grafana.example.com", 3000, "/api/health",
			spec.Env("GF_SERVER_ROOT_URL", "https://grafana.example.com"),
			spec.Env("GF_USERS_ALLOW_SIGN_UP", "false"),
			spec.EnvFromSecret("GF_SECURITY_ADMIN_PASSWORD", "grafana", "admin-password"),
			spec.ConfigFile("/etc/grafana/provisioning/datasources/datasources.yaml", "grafana-datasources", "datasources.yaml"),
			spec.Volume("grafana-data", "/var/lib/grafana"),
			spec.DependsOn("prometheus"),
		),
		spec.WebApp("alertmanager", "prom/alertmanager:v0.27.0", "alerts.example.com", 9093, "/-/healthy",
			spec.Args("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
			spec.ConfigFile("/etc/alertmanager/alertmanager.yml", "alertmanager", "alertmanager.yml"),
			spec.Volume("alertmanager-data", "/alertmanager"),
		),
		spec.Service("loki", "grafana/loki:3.3.0",
			spec.Port("http", 3100),
			spec.Args("-config.file=/etc/loki/loki.yaml"),
			spec.ConfigFile("/etc/loki/loki.yaml", "loki", "loki.yaml"),
			spec.Volume("loki-data", "/loki"),
			spec.HTTPHealth("/ready", "http", 15*time.Second),
			spec.HealthTiming(5*time.Second, 5, 30*time.Second),
		),
		spec.Service("pushgateway", "prom/pushgateway:v1.10.0",
			spec.Port("http", 9091),
			spec.HTTPHealth("/-/healthy", "http", 15*time.Second),
		),
		spec.Service("blackbox-exporter", "prom/blackbox-exporter:v0.25.0",
			spec.Port("http", 9115),
			spec.Args("--config.file=/etc/blackbox_exporter/config.yml"),
			spec.ConfigFile("/etc/blackbox_exporter/config.yml", "blackbox-exporter", "config.yml"),
			spec.HTTPHealth("/-/healthy", "http", 15*time.Second),
			// ICMP probes need raw sockets (NET_RAW is in Docker's default set).
			spec.CapAdd("NET_RAW"),
		),
		nodeAgent("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2", 9100,
			spec.Args("--path.rootfs=/host"),
			spec.HostPID(),
			spec.ReadOnlyVolume("/", "/host"),
		),
		nodeAgent("cadvisor", "gcr.io/cadvisor/cadvisor:v0.49.1", 8080,
			spec.ReadOnlyVolume("/", "/rootfs"),
			spec.ReadOnlyVolume("/var/run", "/var/run"),
			spec.ReadOnlyVolume("/sys", "/sys"),
			spec.ReadOnlyVolume("/var/lib/docker", "/var/lib/docker"),
			spec.ReadOnlyVolume("/dev/disk", "/dev/disk"),
			spec.Device("/dev/kmsg", "", ""),
			spec.Privileged(),
		),
		nodeAgent("promtail", "grafana/promtail:3.3.0", 9080,
			spec.Args("-config.file=/etc/promtail/config.yml"),
			spec.ConfigFile("/etc/promtail/config.yml", "promtail", "config.yml"),
			spec.ReadOnlyVolume("/var/log", "/var/log"),
			spec.ReadOnlyVolume("/var/lib/docker/containers", "/var/lib/docker/containers"),
			spec.DependsOn("loki"),
		),
	)
}
