package dockerimage

// This file owns what an image is made of — its files and entrypoint — and
// the two things made from that: the tar build context and the digest
// Ensure compares.

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
)

// recipe is a validated image description.
type recipe struct {
	paths      []string          // image paths, sorted
	files      map[string]string // image path → host file
	entrypoint []string
}

func newRecipe(files map[string]string, entrypoint []string) (*recipe, error) {
	if len(entrypoint) == 0 {
		return nil, errors.New("no entrypoint")
	}
	for p, host := range files {
		switch {
		case !path.IsAbs(p) || path.Clean(p) != p || p == "/":
			return nil, fmt.Errorf("image path %q is not a clean absolute file path", p)
		case host == "":
			return nil, fmt.Errorf("image path %s: no host file", p)
		}
	}
	return &recipe{paths: slices.Sorted(maps.Keys(files)), files: files, entrypoint: entrypoint}, nil
}

// contextRoot is the folder of the build context that mirrors the image's
// file system.
const contextRoot = "rootfs"

// dockerfile copies the context's rootfs in one layer; the modes and
// owners come from the tar headers.
func (r *recipe) dockerfile() []byte {
	ep, _ := json.Marshal(r.entrypoint) // a []string always marshals
	return fmt.Appendf(nil, "FROM scratch\nCOPY %s/ /\nENTRYPOINT %s\n", contextRoot, ep)
}

// writeContext writes the build context to w as a tar stream: the
// Dockerfile, then every file under rootfs/ with mode 0755 and its parent
// folders.
func (r *recipe) writeContext(w io.Writer) error {
	tw := tar.NewWriter(w)
	df := r.dockerfile()
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))}); err != nil {
		return err
	}
	if _, err := tw.Write(df); err != nil {
		return err
	}
	dirs := map[string]bool{}
	for _, p := range r.paths {
		name := contextRoot + p
		for _, dir := range parents(name) {
			if dirs[dir] {
				continue
			}
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}); err != nil {
				return err
			}
		}
		if err := r.writeFile(tw, name, r.files[p]); err != nil {
			return err
		}
	}
	return tw.Close()
}

func (r *recipe) writeFile(tw *tar.Writer, name, hostPath string) error {
	f, err := os.Open(hostPath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", hostPath)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("read %s: %w", hostPath, err)
	}
	return nil
}

// parents lists the folders above name, outermost first:
// "rootfs/usr/bin/x" → rootfs, rootfs/usr, rootfs/usr/bin.
func parents(name string) []string {
	var dirs []string
	for i, c := range name {
		if c == '/' {
			dirs = append(dirs, name[:i])
		}
	}
	return dirs
}

// digest is "sha256:" and the hex SHA-256 of the recipe: each image path
// with the SHA-256 of its file's content, then the entrypoint. Two recipes
// with the same digest build the same image.
func (r *recipe) digest() (string, error) {
	h := sha256.New()
	for _, p := range r.paths {
		sum, err := fileSHA256(r.files[p])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%s\n", p, sum)
	}
	fmt.Fprintf(h, "entrypoint\x00%s\n", strings.Join(r.entrypoint, "\x00"))
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
