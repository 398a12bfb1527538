// Command media is a media stack in the spirit of ElfHosted (10 services): Jellyfin for
// playback (Intel/AMD hardware transcoding through /dev/dri), Jellyseerr for requests, Sonarr,
// Radarr and Lidarr for TV, films and music, Prowlarr for indexers, Bazarr for subtitles,
// qBittorrent and SABnzbd to download, and Recyclarr keeping the *arr quality profiles in step
// with the TRaSH guides. Images and settings as https://docs.linuxserver.io and
// https://jellyfin.org/docs/general/installation/container document them; the *arr apps'
// health checks are their /ping endpoints.
//
// Every app mounts /srv/media, a shared filesystem (NFS or similar) mounted on every media
// node, as a bind mount (host access), so hard links and atomic moves work between downloads
// and the library as TRaSH recommends; each app's own state is a named volume. qBittorrent
// downloads through WARP (an egress dependent of specs/warp, whose namespace declares its web
// UI port). Apply it with `ctl apply -f specs/media`.
package main

import (
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"

	"github.com/constellation-sh/constellation/pkg/spec"
)

// linuxserver is a linuxserver.io image's conventions: PUID/PGID/TZ, /config on a volume, the
// shared media tree, placed on media nodes.
func linuxserver(name string, opts ...spec.ServiceOption) []spec.ServiceOption {
	return append([]spec.ServiceOption{
		spec.Env("PUID", "1000"),
		spec.Env("PGID", "1000"),
		spec.Env("TZ", "Etc/UTC"),
		spec.Volume(name+"-config", "/config"),
		spec.Volume("/srv/media", "/data"),
		spec.HostAccess(),
		spec.NodeSelector("media", "true"),
	}, opts...)
}

// arr is a *arr app: web UI on port, /ping as its health check, behind a TLS route.
func arr(name, image string, port int32, opts ...spec.ServiceOption) *v1.Service {
	return spec.WebApp(name, image, name+".example.com", port, "/ping", linuxserver(name, opts...)...)
}

func main() {
	spec.Print(
		spec.WebApp("jellyfin", "jellyfin/jellyfin:10.10.3", "watch.example.com", 8096, "/health",
			spec.Env("JELLYFIN_PublishedServerUrl", "https://watch.example.com"),
			spec.Volume("jellyfin-config", "/config"),
			spec.Volume("jellyfin-cache", "/cache"),
			spec.ReadOnlyVolume("/srv/media", "/data"),
			spec.Device("/dev/dri", "", ""),
			spec.HostAccess(),
			spec.NodeSelector("media", "true"),
			spec.ShmSizeMB(512),
		),
		spec.WebApp("jellyseerr", "fallenbagel/jellyseerr:2.1.0", "requests.example.com", 5055, "/api/v1/status",
			spec.Env("TZ", "Etc/UTC"),
			spec.Volume("jellyseerr-config", "/app/config"),
			spec.DependsOn("jellyfin"),
		),
		arr("sonarr", "lscr.io/linuxserver/sonarr:4.0.11", 8989, spec.DependsOn("prowlarr")),
		arr("radarr", "lscr.io/linuxserver/radarr:5.15.1", 7878, spec.DependsOn("prowlarr")),
		arr("lidarr", "lscr.io/linuxserver/lidarr:2.8.2", 8686, spec.DependsOn("prowlarr")),
		arr("prowlarr", "lscr.io/linuxserver/prowlarr:1.27.0", 9696),
		spec.WebApp("bazarr", "lscr.io/linuxserver/bazarr:1.4.5", "bazarr.example.com", 6767, "/",
			linuxserver("bazarr", spec.DependsOn("sonarr"), spec.DependsOn("radarr"))...),
		spec.Service("qbittorrent", "lscr.io/linuxserver/qbittorrent:5.0.2",
			linuxserver("qbittorrent",
				spec.Env("WEBUI_PORT", "8080"),
				spec.Env("TORRENTING_PORT", "6881"),
				spec.EgressVia("warp"),
				spec.StopGracePeriod(60*time.Second),
			)...),
		spec.WebApp("sabnzbd", "lscr.io/linuxserver/sabnzbd:4.4.0", "sabnzbd.example.com", 8080, "/",
			linuxserver("sabnzbd")...),
		spec.Service("recyclarr", "ghcr.io/recyclarr/recyclarr:7.4.0",
			spec.Env("TZ", "Etc/UTC"),
			spec.Env("CRON_SCHEDULE", "@daily"),
			spec.Volume("recyclarr-config", "/config"),
			spec.User("1000:1000"),
			spec.DependsOn("sonarr"),
			spec.DependsOn("radarr"),
		),
	)
}
