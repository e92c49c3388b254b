package dockerimage

// This file owns Ensure: build an image only when the engine lacks it or
// holds one built from other binaries.

import (
	"context"
	"fmt"
	"maps"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// LabelSourceDigest is the image label holding SourceDigest of the files
// and entrypoint the image was built from.
const LabelSourceDigest = "dev.shoal.image.source-digest"

// SourceDigest is "sha256:<hex>" over the files' image paths and contents
// and the entrypoint: what Ensure stores in LabelSourceDigest and compares.
func SourceDigest(files map[string]string, entrypoint []string) (string, error) {
	r, err := newRecipe(files, entrypoint)
	if err != nil {
		return "", err
	}
	return r.digest()
}

// Ensure makes sure the engine has the image ref built from files and
// entrypoint, as Build makes it: it builds when the image is missing or
// its LabelSourceDigest differs, and reports whether it built. labels are
// set on a built image besides LabelSourceDigest. The image a rebuild
// replaces is removed unless containers still use it.
func Ensure(ctx context.Context, cli *client.Client, ref string, files map[string]string, entrypoint []string, labels map[string]string) (built bool, err error) {
	digest, err := SourceDigest(files, entrypoint)
	if err != nil {
		return false, fmt.Errorf("ensure image %s: %w", ref, err)
	}
	img, err := cli.ImageInspect(ctx, ref)
	oldID := ""
	switch {
	case err == nil:
		if img.Config != nil && img.Config.Labels[LabelSourceDigest] == digest {
			return false, nil
		}
		oldID = img.ID
	case cerrdefs.IsNotFound(err):
	default:
		return false, fmt.Errorf("ensure image %s: inspect: %w", ref, err)
	}
	all := maps.Clone(labels)
	if all == nil {
		all = make(map[string]string, 1)
	}
	all[LabelSourceDigest] = digest
	if err := Build(ctx, cli, ref, files, entrypoint, all); err != nil {
		return false, err
	}
	if oldID != "" {
		// Best effort: an image still used by a container stays, untagged,
		// until the engine's owner prunes it.
		_, _ = cli.ImageRemove(ctx, oldID, client.ImageRemoveOptions{PruneChildren: true})
	}
	return true, nil
}
