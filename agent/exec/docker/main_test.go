package docker

// The tests beyond the unit ones need a Docker engine and root (to enter
// the sandboxes' netns); they skip, saying why, when either is missing.
// TestMain builds shoal-echo and a stand-in for `shoald pause`, and the
// echo image from shoal-echo. Every test executor has its own node ID, and
// a cleanup removes the containers labelled with it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/shoal/shoal/internal/dockerimage"
)

var (
	engine    *client.Client
	engineErr error // why there is no engine
	echoImage string
	pauseBin  string
	// badPauseBin is a pause binary that fails as it starts.
	badPauseBin string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "docker-executor-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	echoBin := filepath.Join(dir, "shoal-echo")
	pauseBin = filepath.Join(dir, "pause")
	badPauseBin = filepath.Join(dir, "badpause")
	for out, pkg := range map[string]string{
		echoBin:     "github.com/shoal/shoal/cmd/shoal-echo",
		pauseBin:    "./testdata/pause",
		badPauseBin: "./testdata/badpause",
	} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, b)
			return 1
		}
	}

	engine, engineErr = connect()
	if engine == nil {
		return m.Run()
	}
	defer engine.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	echoImage = "shoal-test/echo:" + randomSuffix()
	if err := dockerimage.Build(ctx, engine, echoImage, map[string]string{"/shoal-echo": echoBin}, []string{"/shoal-echo"}, nil); err != nil {
		fmt.Fprintln(os.Stderr, "build the echo image:", err)
		return 1
	}
	code := m.Run()

	// The pause image the executors built, under its default name.
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	images := []string{echoImage}
	if ref, err := defaultPauseRef(); err == nil {
		images = append(images, ref)
	}
	for _, ref := range images {
		if _, err := engine.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			fmt.Fprintf(os.Stderr, "remove image %s: %v\n", ref, err)
			code = 1
		}
	}
	return code
}

func connect() (*client.Client, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("not root: the tests enter the sandboxes' network namespaces")
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker engine answers: %w", err)
	}
	return cli, nil
}

// defaultPauseRef is the reference executors give the pause image built
// from pauseBin.
func defaultPauseRef() (string, error) {
	return defaultPauseImage(pauseRecipe(pauseBin))
}

// needEngine skips t without a Docker engine and root.
func needEngine(t *testing.T) {
	t.Helper()
	if engine == nil {
		t.Skipf("needs a Docker engine and root: %v", engineErr)
	}
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testLog writes the executor's logs to t's output.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
