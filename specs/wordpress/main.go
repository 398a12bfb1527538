// Command wordpress is the WordPress stack (2 services) as the official images document it
// (https://hub.docker.com/_/wordpress, https://hub.docker.com/_/mariadb): WordPress behind a
// TLS route, started once MariaDB reports healthy. Create the Secret first:
//
//	wordpress-db: password, root-password
//
// Apply it with `ctl apply -f specs/wordpress`.
package main

import (
	"time"

	"github.com/constellation-sh/constellation/pkg/spec"
)

func main() {
	spec.Print(
		spec.Service("wordpress-db", "mariadb:11.4.4",
			spec.Port("mysql", 3306),
			spec.Env("MARIADB_DATABASE", "wordpress"),
			spec.Env("MARIADB_USER", "wordpress"),
			spec.EnvFromSecret("MARIADB_PASSWORD", "wordpress-db", "password"),
			spec.EnvFromSecret("MARIADB_ROOT_PASSWORD", "wordpress-db", "root-password"),
			spec.Volume("wordpress-db-data", "/var/lib/mysql"),
			// The image's own check: the server answers and InnoDB finished initialising.
			spec.ExecHealth(10*time.Second, "healthcheck.sh", "--connect", "--innodb_initialized"),
			spec.HealthTiming(5*time.Second, 5, 30*time.Second),
			spec.StopGracePeriod(60*time.Second),
		),
		spec.WebApp("wordpress", "wordpress:6.7.1-php8.3-apache", "blog.example.com", 80, "/wp-admin/install.php",
			spec.Env("WORDPRESS_DB_HOST", "wordpress-db:3306"),
			spec.Env("WORDPRESS_DB_NAME", "wordpress"),
			spec.Env("WORDPRESS_DB_USER", "wordpress"),
			spec.EnvFromSecret("WORDPRESS_DB_PASSWORD", "wordpress-db", "password"),
			spec.Volume("wordpress-html", "/var/www/html"),
			spec.DependsOnHealthy("wordpress-db"),
		),
	)
}
