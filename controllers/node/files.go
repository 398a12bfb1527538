package node

import (
	"context"
	"errors"

	"github.com/constellation-sh/constellation/pkg/docker"
)

// FileCopier is the engine call that puts spec.files into a created container;
// *docker.Client implements it. An engine without it (a test fake) cannot run a Service with
// files: its replicas fail with reason CreateFailed.
type FileCopier interface {
	CopyFiles(ctx context.Context, id string, files []docker.File) error
}

var _ FileCopier = (*docker.Client)(nil)

// copyFiles puts the files of spec into the created container id.
func (r *Reconciler) copyFiles(ctx context.Context, id string, files []docker.File) error {
	if len(files) == 0 {
		return nil
	}
	fc, ok := r.cfg.Docker.(FileCopier)
	if !ok {
		return errors.New("this engine client cannot copy files into containers (spec.files)")
	}
	return fc.CopyFiles(ctx, id, files)
}
