package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/constellation-sh/constellation/pkg/snapshot"
)

// snapshotCommand is `ctl snapshot`: save and inspect snapshot files of the store
// (docs/snapshots.md). Restoring is the agent's: `constellation-agent --restore FILE`.
func (a *app) snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save and inspect snapshots of the cluster's store",
		Long: "A snapshot is every object of the store at one revision, in one file with a SHA-256\n" +
			"checksum. Restore one into a NEW cluster with `constellation-agent --restore FILE` on an\n" +
			"empty data dir (docs/snapshots.md).",
	}
	cmd.AddCommand(a.snapshotSaveCommand(), a.snapshotInspectCommand())
	return cmd
}

func (a *app) snapshotSaveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Download a snapshot of every object from the server into FILE",
		Long: "Download a consistent snapshot of every object (one linearizable read on the member\n" +
			"--server points at) into FILE. The file is written beside FILE, synced, checked by\n" +
			"decoding it in full, and only then renamed over FILE: a failed or corrupt download\n" +
			"leaves FILE as it was. Secrets stay sealed under the cluster secret (back up each\n" +
			"member's cluster.secret too; docs/snapshots.md). Needs an admin token.",
		Example: "  ctl snapshot save backup-$(date +%F).csnap",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			path := args[0]
			f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
			if err != nil {
				return fmt.Errorf("snapshot save: %w", err)
			}
			tmp := f.Name()
			keep := false
			defer func() {
				if !keep {
					_ = f.Close()
					_ = os.Remove(tmp)
				}
			}()
			if err := f.Chmod(0o600); err != nil {
				return fmt.Errorf("snapshot save: %w", err)
			}
			n, err := c.Snapshot(cmd.Context(), f)
			if err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("snapshot save: sync %s: %w", tmp, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("snapshot save: %w", err)
			}
			snap, err := snapshot.ReadFile(tmp)
			if err != nil {
				return fmt.Errorf("snapshot save: the server sent a bad snapshot (%s left as it was): %w", path, err)
			}
			if err := os.Rename(tmp, path); err != nil {
				return fmt.Errorf("snapshot save: %w", err)
			}
			keep = true
			if d, derr := os.Open(filepath.Dir(path)); derr == nil {
				_ = d.Sync()
				_ = d.Close()
			}
			h := snap.Header
			fmt.Fprintf(a.env.Out, "snapshot saved to %s: %d objects, %s (%d bytes), revision %d, cluster %s, member %s, sha256 %s\n",
				path, len(snap.Objects), humanBytes(n), n, h.Revision, h.ClusterID, h.Member, snap.Checksum)
			return nil
		},
	}
}

// snapshotInfo is `ctl snapshot inspect -o json`.
type snapshotInfo struct {
	File      string         `json:"file"`
	Format    int            `json:"format"`
	Bytes     int64          `json:"bytes"`
	WrittenBy string         `json:"writtenBy"`
	ClusterID string         `json:"clusterID"`
	Member    string         `json:"member,omitempty"`
	Revision  int64          `json:"revision"`
	Created   time.Time      `json:"created"`
	Objects   int            `json:"objects"`
	Kinds     map[string]int `json:"kinds"`
	SHA256    string         `json:"sha256"`
}

func (a *app) snapshotInspectCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Check a snapshot file and print its header and object counts per kind",
		Long: "Decode FILE in full (format version, header, every object, the checksum trailer) and\n" +
			"print what it holds. A corrupt, truncated or newer-format file is refused with what is\n" +
			"wrong and at which byte (exit status 1). Reads the file only; needs no server.",
		Example: "  ctl snapshot inspect backup.csnap\n  ctl snapshot inspect backup.csnap -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o: must be table or json, got %q", output)
			}
			snap, err := snapshot.ReadFile(args[0])
			if err != nil {
				return err
			}
			st, err := os.Stat(args[0])
			if err != nil {
				return err
			}
			h := snap.Header
			info := snapshotInfo{File: args[0], Format: snapshot.FormatVersion, Bytes: st.Size(), WrittenBy: h.WrittenBy,
				ClusterID: h.ClusterID, Member: h.Member, Revision: h.Revision, Created: h.Created,
				Objects: len(snap.Objects), Kinds: map[string]int{}, SHA256: snap.Checksum}
			for _, o := range snap.Objects {
				info.Kinds[o.Kind]++
			}
			if output == "json" {
				var b bytes.Buffer
				enc := json.NewEncoder(&b)
				enc.SetIndent("", "  ")
				_ = enc.Encode(info)
				_, err := a.env.Out.Write(b.Bytes())
				return err
			}
			tw := tabwriter.NewWriter(a.env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "File:\t%s (%s)\n", info.File, humanBytes(info.Bytes))
			fmt.Fprintf(tw, "Format:\t%d\n", info.Format)
			fmt.Fprintf(tw, "Written by:\t%s\n", info.WrittenBy)
			fmt.Fprintf(tw, "Cluster:\t%s\n", info.ClusterID)
			fmt.Fprintf(tw, "Member:\t%s\n", info.Member)
			fmt.Fprintf(tw, "Revision:\t%d\n", info.Revision)
			fmt.Fprintf(tw, "Created:\t%s\n", info.Created.Format(time.RFC3339))
			fmt.Fprintf(tw, "Objects:\t%d\n", info.Objects)
			fmt.Fprintf(tw, "SHA-256:\t%s (verified)\n", info.SHA256)
			_ = tw.Flush()
			kinds := make([]string, 0, len(info.Kinds))
			for k := range info.Kinds {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			tw = tabwriter.NewWriter(a.env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tCOUNT")
			for _, k := range kinds {
				fmt.Fprintf(tw, "%s\t%d\n", k, info.Kinds[k])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
