// Volumes: list with sizes, the containers using one, create and remove, and export/import
// through a short-lived helper container.

package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// Volume is a named volume on this engine.
type Volume struct {
	Name      string
	CreatedAt time.Time
	// Size in bytes; -1 when the engine cannot tell (a volume driver other than local).
	Size int64
	// RefCount is how many containers (running or not) mount it; -1 when unknown.
	RefCount int64
	Labels   map[string]string
}

// diskUsageMu serialises this process's disk-usage calls (see Volumes).
var diskUsageMu sync.Mutex

// Volumes returns the volumes of names that exist on this engine, with their sizes. Sizes come
// from the engine's disk-usage call, which walks every local volume: it takes a while on a
// large disk.
func (c *Client) Volumes(ctx context.Context, names []string) ([]Volume, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Volume
	// The engine runs one disk-usage walk at a time and refuses a second ("a disk usage
	// operation is already running"): one at a time from this process, and a refusal from
	// another client is waited out.
	diskUsageMu.Lock()
	defer diskUsageMu.Unlock()
	err := c.call(ctx, "volume sizes", strings.Join(names, ","), c.t.Create, func(ctx context.Context) error {
		var du client.DiskUsageResult
		var err error
		for attempt := 0; ; attempt++ {
			du, err = c.api.DiskUsage(ctx, client.DiskUsageOptions{Volumes: true, Verbose: true})
			if err == nil || !strings.Contains(err.Error(), "already running") || attempt >= 50 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		if err != nil {
			return wrap(err, "disk usage")
		}
		for _, v := range du.Volumes.Items {
			if !want[v.Name] {
				continue
			}
			vol := Volume{Name: v.Name, Size: -1, RefCount: -1, Labels: v.Labels}
			vol.CreatedAt, _ = time.Parse(time.RFC3339Nano, v.CreatedAt)
			if v.UsageData != nil {
				vol.Size, vol.RefCount = v.UsageData.Size, v.UsageData.RefCount
			}
			out = append(out, vol)
		}
		return nil
	})
	return out, err
}

// ContainersUsingVolume returns the containers (running or not) that mount volume name.
func (c *Client) ContainersUsingVolume(ctx context.Context, name string) ([]Container, error) {
	var out []Container
	err := c.call(ctx, "list containers", "volume="+name, c.t.Call, func(ctx context.Context) error {
		f := client.Filters{}
		f.Add("volume", name)
		res, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return wrap(err, "list containers using volume %s", name)
		}
		for _, s := range res.Items {
			ct, err := c.inspect(ctx, s.ID)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, ct)
		}
		return nil
	})
	return out, err
}

// LabelVolumeHelper marks the short-lived containers that carry a volume's archive in and out.
// They are created, never started, and removed when the copy ends.
const LabelVolumeHelper = "constellation.volume-helper"

// volumeMountPoint is where a helper container mounts the volume.
const volumeMountPoint = "/constellation-volume"

// withVolumeHelper creates a stopped container from image with volume name mounted, runs fn
// with its ID, and removes it. A never-started container is enough for Docker's archive calls,
// and any image will do (its entrypoint never runs): callers pass the replica's own image,
// which its node already has.
func (c *Client) withVolumeHelper(ctx context.Context, name, image string, readOnly bool, fn func(id string) error) error {
	if image == "" {
		return fmt.Errorf("volume %s: no image to mount it in", name)
	}
	var id string
	err := c.call(ctx, "create volume helper", name, c.t.Create, func(ctx context.Context) error {
		if _, err := c.api.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err != nil {
			return wrap(err, "volume %s", name)
		}
		res, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: image, Labels: map[string]string{LabelVolumeHelper: name},
				Entrypoint: []string{"/constellation-volume-helper-never-runs"}},
			HostConfig: &container.HostConfig{
				NetworkMode: "none",
				Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: volumeMountPoint, ReadOnly: readOnly}},
			},
		})
		if err != nil {
			return wrap(err, "create volume helper for %s", name)
		}
		id = res.ID
		return nil
	})
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.t.Call)
		defer cancel()
		if _, err := c.api.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: false}); err != nil && !cerrdefs.IsNotFound(err) {
			c.log.Warn("volume helper container not removed", "container", short(id), "volume", name, "err", err)
		}
	}()
	return fn(id)
}

// ExportVolume writes a tar archive of volume name's contents to w, with paths relative to
// the volume's root ("./" is the root, "./db/base" a file). image is any image the engine has.
func (c *Client) ExportVolume(ctx context.Context, name, image string, w io.Writer) error {
	return c.withVolumeHelper(ctx, name, image, true, func(id string) error {
		res, err := c.api.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: volumeMountPoint + "/."})
		if err != nil {
			return wrap(err, "archive of volume %s", name)
		}
		defer res.Content.Close()
		return rebaseTar(res.Content, w, strings.TrimPrefix(volumeMountPoint, "/"), ".")
	})
}

// ImportVolume extracts the tar archive r (paths relative to the volume's root, as
// ExportVolume writes them) into volume name, over what it holds. image is any image the engine
// has.
func (c *Client) ImportVolume(ctx context.Context, name, image string, r io.Reader) error {
	return c.withVolumeHelper(ctx, name, image, false, func(id string) error {
		pr, pw := io.Pipe()
		checked := make(chan error, 1)
		go func() {
			err := checkTar(r, pw)
			checked <- err
			pw.CloseWithError(err)
		}()
		_, err := c.api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: volumeMountPoint, Content: pr, CopyUIDGID: true})
		pr.CloseWithError(errors.New("copy ended"))
		if err == nil {
			return <-checked // the engine read the archive to its end: checkTar is done
		}
		// A refused archive is the reason, whatever the engine made of the cut stream; a
		// check still reading the caller's body is not waited for.
		select {
		case cerr := <-checked:
			if errors.Is(cerr, ErrBadArchive) {
				return cerr
			}
		default:
		}
		return wrap(err, "extract into volume %s", name)
	})
}

// EnsureVolume creates the named volume unless it exists.
func (c *Client) EnsureVolume(ctx context.Context, name string) error {
	return c.call(ctx, "ensure volume", name, c.t.Call, func(ctx context.Context) error { return c.ensureVolume(ctx, name) })
}

func (c *Client) ensureVolume(ctx context.Context, name string) error {
	if _, err := c.api.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return wrap(err, "inspect volume %s", name)
	}
	_, err := c.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: map[string]string{"constellation.managed": "true"}})
	return wrap(err, "create volume %s", name)
}

// RemoveVolume removes a volume; a volume already gone is not an error.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	return c.call(ctx, "remove volume", name, c.t.Call, func(ctx context.Context) error {
		_, err := c.api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove volume %s", name)
	})
}
