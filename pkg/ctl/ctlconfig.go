package ctl

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/constellation-sh/constellation/pkg/pki"
)

// EnvConfig names ctl's config file (default $XDG_CONFIG_HOME/constellation/config.json, else
// ~/.config/constellation/config.json).
const EnvConfig = "CONSTELLATION_CONFIG"

// clientFile is ctl's config file, as kubeconfig is kubectl's: where the cluster is, the CA it
// trusts, the token. Written by `ctl config set` with mode 0600; flags and environment variables
// override each field.
type clientFile struct {
	Server        string `json:"server"`
	Token         string `json:"token,omitempty"`
	CACert        string `json:"caCert,omitempty"`
	CAFingerprint string `json:"caFingerprint,omitempty"`
}

func (a *app) configPath() string {
	if p := a.env.Getenv(EnvConfig); p != "" {
		return p
	}
	if x := a.env.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "constellation", "config.json")
	}
	home := a.env.Getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".config", "constellation", "config.json")
}

// readClientFile reads the config file; a missing one is an empty config.
func (a *app) readClientFile() (clientFile, error) {
	var cf clientFile
	p := a.configPath()
	if p == "" {
		return cf, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return cf, fmt.Errorf("config file: %w", err)
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		return cf, fmt.Errorf("config file %s: %w", p, err)
	}
	if cf.Token != "" {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
			return cf, fmt.Errorf("config file %s holds a token and is readable by others (mode %04o): chmod 600 it", p, st.Mode().Perm())
		}
	}
	return cf, nil
}

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Write or show ctl's config file (server, cluster CA, token)",
	}
	cmd.AddCommand(a.configSetCommand(), a.configViewCommand())
	return cmd
}

func (a *app) configSetCommand() *cobra.Command {
	var fingerprint string
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Check a server and token, trust the cluster CA, and save them to the config file",
		Long: "ctl config set connects to --server with the token (--token, --token-file or the\n" +
			"environment). Over https it trusts the cluster CA only if the server proves it knows the\n" +
			"token, or if the CA matches --ca-fingerprint (shown by `ctl config view` on a machine that\n" +
			"already trusts it, and logged by the first agent). It then checks that the token works and\n" +
			"writes server, CA and token to the config file (mode 0600), so that later commands need no\n" +
			"flags.",
		Example: "  ctl config set --server https://n1.tailnet:7480 --token-file ~/constellation.token",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.server == "" && a.env.Getenv(EnvServer) == "" {
				return errors.New("--server: required")
			}
			a.fingerprint = fingerprint
			a.ignoreFile = true
			c, err := a.client()
			if err != nil {
				return err
			}
			if _, err := c.List(cmd.Context(), "nodes", ""); err != nil {
				return err
			}
			cf := clientFile{Server: c.Server(), Token: a.resolvedToken}
			if ca := c.CA(); ca != nil {
				cf.CACert = string(pemCert(ca.Raw))
				cf.CAFingerprint = pki.Fingerprint(ca)
			}
			p := a.configPath()
			if p == "" {
				return errors.New("no config file path: set " + EnvConfig + " or HOME")
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return fmt.Errorf("config file: %w", err)
			}
			b, _ := json.MarshalIndent(cf, "", "  ")
			tmp := p + ".tmp"
			if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
				return fmt.Errorf("config file: %w", err)
			}
			if err := os.Rename(tmp, p); err != nil {
				return fmt.Errorf("config file: %w", err)
			}
			fmt.Fprintf(a.env.Out, "wrote %s: server %s", p, cf.Server)
			if cf.CAFingerprint != "" {
				fmt.Fprintf(a.env.Out, ", cluster CA %s", cf.CAFingerprint)
			}
			fmt.Fprintln(a.env.Out)
			return nil
		},
	}
	cmd.Flags().StringVar(&fingerprint, "ca-fingerprint", "", "trust the cluster CA with this SHA-256 fingerprint (sha256:HEX)")
	return cmd
}

func (a *app) configViewCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "view",
		Short: "Show the config file (the token is never printed)",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			cf, err := a.readClientFile()
			if err != nil {
				return err
			}
			tok := "(none)"
			if cf.Token != "" {
				tok = "(set)"
			}
			fp := cf.CAFingerprint
			if fp == "" {
				fp = "(none)"
			}
			fmt.Fprintf(a.env.Out, "file:    %s\nserver:  %s\nCA:      %s\ntoken:   %s\n", a.configPath(), orDash(cf.Server), fp, tok)
			return nil
		},
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
