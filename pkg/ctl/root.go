package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/constellation-sh/constellation/pkg/client"
)

// Environment variables ctl reads.
const (
	EnvServer    = "CONSTELLATION_SERVER"
	EnvToken     = "CONSTELLATION_TOKEN"
	EnvTokenFile = "CONSTELLATION_TOKEN_FILE"
)

// Env is everything ctl takes from the outside world, so tests can supply their own.
type Env struct {
	// In is read by "-f -". Default os.Stdin.
	In io.Reader
	// Out receives results. Default os.Stdout.
	Out io.Writer
	// Err receives errors, progress notes and the quorum note. Default os.Stderr.
	Err io.Writer
	// Getenv reads the environment. Default os.Getenv.
	Getenv func(string) string
	// Now is the clock ages are computed against. Default time.Now.
	Now func() time.Time
	// GoBin runs Go spec packages. Default "go".
	GoBin string
	// ClientConfig is the base of the API client configuration (HTTP client, timeouts); server
	// and token come from flags and the environment.
	ClientConfig client.Config
}

func (e *Env) defaults() {
	if e.In == nil {
		e.In = os.Stdin
	}
	if e.Out == nil {
		e.Out = os.Stdout
	}
	if e.Err == nil {
		e.Err = os.Stderr
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.GoBin == "" {
		e.GoBin = "go"
	}
}

// exitError carries an exit status. A nil err means the message was already printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// silentExit ends the command with code, nothing more printed.
func silentExit(code int) error { return &exitError{code: code} }

// Main runs ctl with args (without the program name) and returns the exit status.
func Main(args []string, env Env) int {
	env.defaults()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, env)
}

// Run is Main with a context and no signal handling, for tests.
func Run(ctx context.Context, args []string, env Env) int {
	env.defaults()
	app := &app{env: env}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
		err = ee.err
	}
	fmt.Fprintln(env.Err, "error: "+oneLine(app.explain(err)))
	return code
}

// app holds the global flags and the client built from them.
type app struct {
	env       Env
	server    string
	token     string
	tokenFile string
	c         *client.Client
	// fingerprint pins the cluster CA (ctl config set --ca-fingerprint).
	fingerprint string
	// ignoreFile: do not read the config file (ctl config set writes it).
	ignoreFile bool
	// resolvedToken is the token the client was built with.
	resolvedToken string
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "ctl",
		Short: "ctl controls a Constellation cluster",
		Long: "ctl controls a Constellation cluster through any agent's HTTP API.\n\n" +
			"The server is --server, else $" + EnvServer + ", else " + client.DefaultServer + ".\n" +
			"The bearer token is --token or --token-file, else $" + EnvToken + " or $" + EnvTokenFile + ".",
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.server, "server", "s", "", "API server URL (default $"+EnvServer+" or "+client.DefaultServer+")")
	pf.StringVar(&a.token, "token", "", "bearer token (default $"+EnvToken+")")
	pf.StringVar(&a.tokenFile, "token-file", "", "file holding the bearer token (default $"+EnvTokenFile+")")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddCommand(
		a.applyCommand(),
		a.getCommand(),
		a.describeCommand(),
		a.deleteCommand(),
		a.diffCommand(),
		a.routesCommand(),
		a.cordonCommand(),
		a.uncordonCommand(),
		a.drainCommand(),
		a.nodeGroupCommand(),
		a.secretGroupCommand(),
		a.clusterGroupCommand(),
		a.rolloutCommand(),
		a.logsCommand(),
		a.execCommand(),
		a.volumeCommand(),
		a.topCommand(),
		a.versionCommand(),
		a.configCommand(),
		a.scaleCommand(),
		a.completionCommand(),
		a.doctorCommand(),
		a.convertCommand(),
		a.snapshotCommand(),
		a.imageCommand(),
	)
	a.addCompletions(root)
	return root
}

// client returns the API client, built on first use from the flags and environment.
func (a *app) client() (*client.Client, error) {
	if a.c != nil {
		return a.c, nil
	}
	var cf clientFile
	if !a.ignoreFile {
		var err error
		if cf, err = a.readClientFile(); err != nil {
			return nil, err
		}
	}
	server := a.server
	if server == "" {
		server = a.env.Getenv(EnvServer)
	}
	fromFile := server == "" || server == cf.Server
	if server == "" {
		server = cf.Server
	}
	token := a.token
	if token == "" && a.tokenFile == "" {
		token = a.env.Getenv(EnvToken)
	}
	tf := a.tokenFile
	if token == "" && tf == "" {
		tf = a.env.Getenv(EnvTokenFile)
	}
	if token == "" && tf != "" {
		b, err := os.ReadFile(tf)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("token file %s is empty", tf)
		}
	}
	if token == "" && fromFile {
		token = cf.Token
	}
	a.resolvedToken = token
	cfg := a.env.ClientConfig
	cfg.Server, cfg.Token, cfg.UserAgent = server, token, "ctl/"+Version
	if fromFile && cf.CACert != "" && cfg.CACert == nil {
		cfg.CACert, cfg.CAFingerprint = []byte(cf.CACert), cf.CAFingerprint
	}
	if a.fingerprint != "" {
		cfg.CAFingerprint = a.fingerprint
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	a.c = c
	return c, nil
}

// explain turns transport and auth failures into advice.
func (a *app) explain(err error) error {
	server := client.DefaultServer
	if a.c != nil {
		server = a.c.Server()
	}
	var ce *client.ConnError
	var te *client.TrustError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("%v: check the token (--token, --token-file or %s), or pin the cluster CA with `ctl config set --ca-fingerprint`", te, EnvToken)
	case errors.As(err, &ce):
		reason := ce.Err.Error()
		if errors.Is(ce.Err, syscall.ECONNREFUSED) {
			reason = "connection refused"
		}
		return fmt.Errorf("cannot reach the Constellation API at %s (%s): is an agent running there? Point ctl elsewhere with --server or %s", ce.Server, reason, EnvServer)
	case client.IsUnauthorized(err):
		msg := "unauthorized"
		if m := err.Error(); m != "" && !strings.Contains(m, "401") {
			msg = m
		}
		if strings.Contains(msg, "--token") {
			return fmt.Errorf("%s: %s", server, msg)
		}
		return fmt.Errorf("%s: %s: pass the cluster's token with --token, --token-file or %s", server, msg, EnvToken)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out talking to %s", server)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	}
	return err
}

// oneLine folds a message onto one line; cobra's "Did you mean this?" block becomes a suffix.
func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "\r", "")
	if head, sugg, ok := strings.Cut(s, "\n\nDid you mean this?\n"); ok {
		s = head + " (did you mean " + strings.Join(strings.Fields(sugg), " or ") + "?)"
	}
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
