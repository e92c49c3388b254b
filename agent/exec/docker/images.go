package docker

// This file owns getting images onto the engine: a task's image by the
// pull policy, and the pause image, built here.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/shoal/shoal/internal/dockerimage"
)

// PullPolicy says when a task's image is pulled.
type PullPolicy string

const (
	// PullAlways pulls before every task; an image the node has is used
	// when the pull fails.
	PullAlways PullPolicy = "always"
	// PullMissing pulls images the node does not have.
	PullMissing PullPolicy = "missing"
	// PullNever uses only images the node has.
	PullNever PullPolicy = "never"
)

// ParsePullPolicy reads "always", "missing" or "never".
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case PullAlways, PullMissing, PullNever:
		return p, nil
	}
	return "", fmt.Errorf("pull policy %q is not always, missing or never", s)
}

// ImageError says a task's image is not on the node and could not be
// pulled. A task that gets it is rejected, not retried.
type ImageError struct {
	Image string
	Err   error // why it cannot be pulled
}

func (e *ImageError) Error() string {
	return fmt.Sprintf("image %q is not on this node and cannot be pulled: %v", e.Image, e.Err)
}

func (e *ImageError) Unwrap() error { return e.Err }

// errPullNever is ImageError.Err under PullNever.
var errPullNever = errors.New(`the pull policy is "never"`)

// ensureImage makes ref present on the engine as the pull policy allows.
func (e *Executor) ensureImage(ctx context.Context, ref string) error {
	if e.cfg.Pull != PullAlways {
		present, err := e.hasImage(ctx, ref)
		switch {
		case err != nil:
			return err
		case present:
			return nil
		case e.cfg.Pull == PullNever:
			return &ImageError{Image: ref, Err: errPullNever}
		}
	}
	pullErr := e.pull(ctx, ref)
	if pullErr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("pull image %s: %w", ref, pullErr)
	}
	if e.cfg.Pull == PullAlways {
		if present, err := e.hasImage(ctx, ref); err == nil && present {
			e.log.Warn("pull failed; using the image the node has", "image", ref, "err", pullErr)
			return nil
		}
	}
	return &ImageError{Image: ref, Err: pullErr}
}

func (e *Executor) hasImage(ctx context.Context, ref string) (bool, error) {
	_, err := e.cli.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

func (e *Executor) pull(ctx context.Context, ref string) error {
	e.log.Info("pulling image", "image", ref)
	resp, err := e.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	return resp.Wait(ctx)
}

// pauseImage returns the pause image's reference, building the image
// first if the engine lacks it or holds one of another binary.
func (e *Executor) pauseImage(ctx context.Context) (string, error) {
	e.pauseMu.Lock()
	defer e.pauseMu.Unlock()
	if e.pauseRef != "" {
		return e.pauseRef, nil
	}
	files, entrypoint := pauseRecipe(e.cfg.PauseBinary)
	ref := e.cfg.PauseImage
	if ref == "" {
		var err error
		if ref, err = defaultPauseImage(files, entrypoint); err != nil {
			return "", fmt.Errorf("pause image: %w", err)
		}
	}
	built, err := dockerimage.Ensure(ctx, e.cli, ref, files, entrypoint, nil)
	if err != nil {
		return "", fmt.Errorf("pause image: %w", err)
	}
	if built {
		e.log.Info("built the pause image", "image", ref, "binary", e.cfg.PauseBinary)
	}
	e.pauseRef = ref
	return ref, nil
}

// pauseRecipe is what the pause image is made of: binary as
// /<its base name>, run with the argument "pause".
func pauseRecipe(binary string) (files map[string]string, entrypoint []string) {
	inImage := "/" + filepath.Base(binary)
	return map[string]string{inImage: binary}, []string{inImage, "pause"}
}

// defaultPauseImage is the pause image's reference when none is
// configured: shoal/pause tagged with the start of its source digest, so
// a new binary gets a new tag.
func defaultPauseImage(files map[string]string, entrypoint []string) (string, error) {
	digest, err := dockerimage.SourceDigest(files, entrypoint)
	if err != nil {
		return "", err
	}
	return "shoal/pause:" + strings.TrimPrefix(digest, "sha256:")[:12], nil
}

// forgetPauseImage makes the next pauseImage check the engine again (the
// image was removed behind the executor's back).
func (e *Executor) forgetPauseImage() {
	e.pauseMu.Lock()
	e.pauseRef = ""
	e.pauseMu.Unlock()
}
