// Command unsend is Unsend, the open-source email platform (2 services), as
// https://docs.unsend.dev/get-started/self-hosting documents it: the app behind a TLS route and
// its PostgreSQL. Unsend sends through Amazon SES: the AWS keys are Secrets. (Its optional Redis
// queue can be added with spec.Redis.) Create the Secret first:
//
//	unsend: db-password, database-url, nextauth-secret, aws-access-key, aws-secret-key, github-secret
//
// Apply it with `ctl apply -f specs/unsend`.
package main

import "github.com/constellation-sh/constellation/pkg/spec"

func main() {
	spec.Print(
		spec.Postgres("unsend-db", "postgres:16.6-alpine", "unsend", "unsend", spec.Key("unsend", "db-password")),
		spec.WebApp("unsend", "unsend/unsend:v1.3.2", "mail.example.com", 3000, "/api/health",
			spec.EnvFromSecret("DATABASE_URL", "unsend", "database-url"),
			spec.Env("NEXTAUTH_URL", "https://mail.example.com"),
			spec.EnvFromSecret("NEXTAUTH_SECRET", "unsend", "nextauth-secret"),
			spec.EnvFromSecret("AWS_ACCESS_KEY", "unsend", "aws-access-key"),
			spec.EnvFromSecret("AWS_SECRET_KEY", "unsend", "aws-secret-key"),
			spec.Env("AWS_DEFAULT_REGION", "eu-central-1"),
			spec.Env("GITHUB_ID", "Iv1.unsend-example"),
			spec.EnvFromSecret("GITHUB_SECRET", "unsend", "github-secret"),
			spec.Env("NEXT_PUBLIC_IS_CLOUD", "false"),
			spec.DependsOnHealthy("unsend-db"),
		),
	)
}
