// Command llm is the LLM stack: Open WebUI (https://docs.openwebui.com/getting-started/quick-start/)
// behind a TLS route, Ollama for local models, LiteLLM (https://docs.litellm.ai/docs/proxy/deploy)
// as the OpenAI-compatible gateway to hosted providers, Qdrant as the vector database for
// retrieval, and "llm": Constellation's failover proxy (docs/proxy.md: upstreams, no container)
// in front of LiteLLM, falling back to Ollama's OpenAI-compatible API when the providers answer
// 429, 5xx or time out. Open WebUI talks to http://llm:4000/v1 and never sees the failover.
//
// LiteLLM's model list is a Config (config/litellm.yaml, embedded) copied to /app/config.yaml.
//
// Create the Secrets first: litellm: master-key, openai-api-key; open-webui: secret-key.
// Apply it with `ctl apply -f specs/llm`.
package main

import (
	_ "embed"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
)

//go:embed config/litellm.yaml
var litellmYAML string

func main() {
	spec.Print(
		spec.Config("litellm", map[string]string{"config.yaml": litellmYAML}),
		spec.Service("ollama", "ollama/ollama:0.4.2",
			spec.Port("http", 11434),
			spec.Env("OLLAMA_KEEP_ALIVE", "24h"),
			spec.Volume("ollama-models", "/root/.ollama"),
			spec.ExecHealth(30*time.Second, "ollama", "list"),
			spec.HealthTiming(10*time.Second, 3, 30*time.Second),
			// GPU nodes only; /dev/dri is host access.
			spec.NodeSelector("gpu", "true"),
			spec.Device("/dev/dri", "", ""),
			spec.HostAccess(),
		),
		spec.Service("litellm", "ghcr.io/berriai/litellm:main-v1.52.14",
			spec.PortSpec(v1.ServicePort{Name: "http", ContainerPort: 4000, AppProtocol: v1.AppProtocolHTTP}),
			spec.Args("--config", "/app/config.yaml", "--port", "4000", "--num_workers", "4"),
			spec.ConfigFile("/app/config.yaml", "litellm", "config.yaml"),
			spec.EnvFromSecret("LITELLM_MASTER_KEY", "litellm", "master-key"),
			spec.EnvFromSecret("OPENAI_API_KEY", "litellm", "openai-api-key"),
			spec.HTTPHealth("/health/liveliness", "http", 15*time.Second),
			spec.Replicas(2),
		),
		spec.Service("llm", "",
			spec.Port("http", 4000),
			spec.Upstreams("http://litellm:4000", "http://ollama:11434"),
			spec.FailoverOn("429", "5xx", "timeout", "connectFailure"),
		),
		spec.Service("qdrant", "qdrant/qdrant:v1.12.4",
			spec.Port("http", 6333),
			spec.Port("grpc", 6334),
			spec.Volume("qdrant-data", "/qdrant/storage"),
			spec.TCPHealth("http", 15*time.Second),
		),
		spec.WebApp("open-webui", "ghcr.io/open-webui/open-webui:v0.4.7", "chat.example.com", 8080, "/health",
			spec.Env("OPENAI_API_BASE_URL", "http://llm:4000/v1"),
			spec.EnvFromSecret("OPENAI_API_KEY", "litellm", "master-key"),
			spec.Env("OLLAMA_BASE_URL", "http://ollama:11434"),
			spec.Env("VECTOR_DB", "qdrant"),
			spec.Env("QDRANT_URI", "http://qdrant:6333"),
			spec.EnvFromSecret("WEBUI_SECRET_KEY", "open-webui", "secret-key"),
			spec.Volume("open-webui-data", "/app/backend/data"),
			spec.DependsOn("qdrant"),
		),
	)
}
