// Package dockerimage builds the small images shoal runs without a
// registry: FROM scratch, a few static binaries copied in with mode 0755,
// an entrypoint. Images are built by the engine's build API from a tar
// context made here, so nothing is pulled. Ensure builds only when the
// image is missing or was built from other binaries, which it tells by
// the image's LabelSourceDigest label.
//
// It imports nothing of the project.
package dockerimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// Build builds the image ref FROM scratch: each file of files (path in the
// image → file on this host) is copied in with mode 0755, root-owned, and
// entrypoint becomes the image's entrypoint. labels are set on the image.
// The engine replaces an image of the same ref.
func Build(ctx context.Context, cli *client.Client, ref string, files map[string]string, entrypoint []string, labels map[string]string) error {
	if ref == "" {
		return errors.New("build an image: no image reference")
	}
	recipe, err := newRecipe(files, entrypoint)
	if err != nil {
		return fmt.Errorf("build image %s: %w", ref, err)
	}
	// The context is streamed: binaries may be tens of MiB.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(recipe.writeContext(pw)) }()
	defer pr.Close() // ends the writer if the build stops reading

	res, err := cli.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{ref},
		Labels:      maps.Clone(labels),
		Remove:      true,
		ForceRemove: true,
		// The classic builder: BuildKit needs a session for a
		// context sent this way, and adds nothing for a scratch image.
		Version: build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", ref, err)
	}
	defer res.Body.Close()
	if err := readBuildOutput(res.Body); err != nil {
		return fmt.Errorf("build image %s: %w", ref, err)
	}
	return nil
}

// readBuildOutput reads the engine's build messages to their end and
// returns the error one of them reports.
func readBuildOutput(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg jsonstream.Message
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read the engine's build output: %w", err)
		}
		if msg.Error != nil {
			return fmt.Errorf("the engine failed the build: %w", msg.Error)
		}
	}
}
