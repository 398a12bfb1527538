package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

func (a *app) execCommand() *cobra.Command {
	var stdin, tty bool
	cmd := &cobra.Command{
		Use:   "exec SERVICE[/INDEX] [-it] -- CMD [ARG...]",
		Short: "Run a command in a replica of a Service",
		Long: "Run CMD in a replica of SERVICE (replica INDEX, else the first running one) through the\n" +
			"agent of the node that runs it. -i passes stdin, -t gives the command a terminal (resized\n" +
			"with yours). ctl exits with the command's exit status. Needs the admin scope.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return errors.New("exec: put the command after --: ctl exec SERVICE[/INDEX] -- CMD [ARG...]")
			}
			ref, err := parseReplicaRef(args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			code, err := runExec(cmd.Context(), c, a.env, ref, args[1:], stdin, tty)
			if err != nil {
				return err
			}
			if code != 0 {
				return silentExit(code)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "pass stdin to the command")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "give the command a terminal")
	return cmd
}

// execTarget picks the replica to run in: INDEX, else the lowest running one.
func execTarget(svc *v1.Service, index int32) (logTarget, error) {
	rs := append([]v1.ReplicaStatus(nil), svc.Status.ReplicaStatuses...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Index < rs[j].Index })
	for _, r := range rs {
		if (index < 0 || r.Index == index) && r.Node != "" && r.State == v1.ReplicaRunning {
			return logTarget{index: r.Index, node: r.Node, container: r.ContainerID}, nil
		}
	}
	if index >= 0 {
		for _, r := range rs {
			if r.Index == index {
				return logTarget{}, fmt.Errorf("services/%s replica %d on node %s is %s, not running", svc.Metadata.Name, index, r.Node, r.State)
			}
		}
		return logTarget{}, fmt.Errorf("services/%s has no replica %d reported by a node", svc.Metadata.Name, index)
	}
	return logTarget{}, fmt.Errorf("services/%s has no running replica", svc.Metadata.Name)
}

func runExec(ctx context.Context, c *client.Client, env Env, ref replicaRef, cmdline []string, stdin, tty bool) (int, error) {
	obj, err := c.Get(ctx, v1.KindService, ref.service)
	if err != nil {
		return -1, err
	}
	t, err := execTarget(obj.(*v1.Service), ref.index)
	if err != nil {
		return -1, err
	}
	opts := client.ExecOptions{Service: ref.service, Index: t.index, Container: t.container, Cmd: cmdline, TTY: tty, Stdin: stdin}
	var resize chan [2]uint16
	inFile, inIsFile := env.In.(*os.File)
	termIn := tty && inIsFile && term.IsTerminal(int(inFile.Fd()))
	if termIn {
		if w, h, err := term.GetSize(int(inFile.Fd())); err == nil {
			opts.Width, opts.Height = uint16(w), uint16(h)
		}
	}
	conn, err := c.Exec(ctx, t.node, opts)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	if termIn {
		old, err := term.MakeRaw(int(inFile.Fd()))
		if err == nil {
			defer func() { _ = term.Restore(int(inFile.Fd()), old) }()
		}
		resize = make(chan [2]uint16, 1)
		stop := watchResize(int(inFile.Fd()), resize)
		defer stop()
	}
	var in io.Reader
	if stdin {
		in = env.In
	}
	code, err := nodeapi.RunSession(ctx, conn, in, env.Out, env.Err, resize)
	if err != nil {
		return -1, fmt.Errorf("exec in %s-%d on node %s: %w", ref.service, t.index, t.node, err)
	}
	return code, nil
}
