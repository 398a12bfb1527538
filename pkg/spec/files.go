package spec

import (
	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Configs and files (docs/spec.md "files" and "Config"): a Config holds file contents that are
// not secret; spec.files puts one key of a Config or a Secret in every container as a file,
// copied in before the container starts.

// Config returns a Config holding text files: key → content. A stack usually embeds the
// content (`//go:embed prometheus.yml`) next to its main.go.
func Config(name string, data map[string]string) *v1.Config {
	c := &v1.Config{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindConfig}}
	c.Metadata.Name = name
	c.Spec.Data = data
	return c
}

// BinaryConfig returns a Config holding bytes (spec.binaryData): key → content.
func BinaryConfig(name string, data map[string][]byte) *v1.Config {
	c := &v1.Config{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindConfig}}
	c.Metadata.Name = name
	c.Spec.BinaryData = data
	return c
}

// ConfigFile puts key of Config config at path in the containers, mode 0444 (the default).
// An empty key reads the Config's only key.
func ConfigFile(path, config, key string) ServiceOption {
	return File(v1.FileMount{Path: path, Config: config, Key: key})
}

// ConfigFileMode is ConfigFile with permission bits (0o555 for a script).
func ConfigFileMode(path, config, key string, mode v1.FileMode) ServiceOption {
	return File(v1.FileMount{Path: path, Config: config, Key: key, Mode: mode})
}

// SecretFile puts key of Secret secret at path in the containers (empty path:
// /run/secrets/SECRET), mode 0400 (the default: readable by root only, as the file belongs to
// uid 0; a process running as another user needs SecretFileMode with 0o444).
func SecretFile(path, secret, key string) ServiceOption {
	return File(v1.FileMount{Path: path, Secret: secret, Key: key})
}

// SecretFileMode is SecretFile with permission bits.
func SecretFileMode(path, secret, key string, mode v1.FileMode) ServiceOption {
	return File(v1.FileMount{Path: path, Secret: secret, Key: key, Mode: mode})
}

// File adds a spec.files entry as written.
func File(f v1.FileMount) ServiceOption {
	return func(s *v1.Service) { s.Spec.Files = append(s.Spec.Files, f) }
}
