package dockerimage

// These tests need a Docker engine (DOCKER_HOST or the default socket);
// they skip when none answers. They build images named
// shoal-test/dockerimage:<random> labelled testLabel and remove them.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

const testLabel = "dev.shoal.test"

var (
	engine    *client.Client
	engineErr error
	// selfcheck holds the test payload built as variant "a" and "b".
	selfcheck = map[string]string{}
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dockerimage-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, v := range []string{"a", "b"} {
		out := filepath.Join(dir, "selfcheck-"+v)
		cmd := exec.Command("go", "build", "-ldflags", "-X main.variant="+v, "-o", out, "./testdata/selfcheck")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build the test payload: %v\n%s", err, b)
			return 1
		}
		selfcheck[v] = out
	}
	engine, engineErr = connect()
	if engine != nil {
		defer engine.Close()
	}
	return m.Run()
}

func connect() (*client.Client, error) {
	cli, err := client.New(client.FromEnv) // negotiates the API version
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}

// needEngine skips t when no Docker engine answers.
func needEngine(t *testing.T) *client.Client {
	t.Helper()
	if engine == nil {
		t.Skipf("needs a Docker engine; none answers: %v", engineErr)
	}
	return engine
}

// testRef is a fresh image reference removed when t ends.
func testRef(t *testing.T, cli *client.Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ref := "shoal-test/dockerimage:" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove image %s: %v", ref, err)
		}
	})
	return ref
}

// runImage runs ref with args to its end and returns its exit code.
func runImage(t *testing.T, cli *client.Client, ref string, args ...string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: ref, Cmd: args, Labels: map[string]string{testLabel: "dockerimage"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatalf("create a container of %s: %v", ref, err)
	}
	defer func() {
		if _, err := cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("remove container: %v", err)
		}
	}()
	wait := cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start a container of %s: %v", ref, err)
	}
	select {
	case res := <-wait.Result:
		return res.StatusCode
	case err := <-wait.Error:
		t.Fatalf("wait for a container of %s: %v", ref, err)
	}
	return -1
}

func TestBuild(t *testing.T) {
	cli := needEngine(t)
	ctx := context.Background()
	ref := testRef(t, cli)
	files := map[string]string{"/usr/local/bin/selfcheck": selfcheck["a"]}
	entrypoint := []string{"/usr/local/bin/selfcheck", "check"}
	if err := Build(ctx, cli, ref, files, entrypoint, map[string]string{testLabel: "dockerimage"}); err != nil {
		t.Fatal(err)
	}
	img, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Config.Labels[testLabel]; got != "dockerimage" {
		t.Errorf("label %s = %q, want dockerimage", testLabel, got)
	}
	if fmt.Sprint(img.Config.Entrypoint) != fmt.Sprint(entrypoint) {
		t.Errorf("entrypoint %q, want %q", img.Config.Entrypoint, entrypoint)
	}
	// The payload checks its own mode and owner, and the entrypoint's
	// arguments.
	if code := runImage(t, cli, ref, "a"); code != 0 {
		t.Errorf("the image's payload exited %d, want 0 (mode, owner or arguments wrong)", code)
	}
}

func TestBuildErrors(t *testing.T) {
	cli := needEngine(t)
	ctx := context.Background()
	ref := testRef(t, cli)
	missing := filepath.Join(t.TempDir(), "missing")
	if err := Build(ctx, cli, ref, map[string]string{"/x": missing}, []string{"/x"}, nil); err == nil {
		t.Error("build with a missing file: no error")
	}
	if err := Build(ctx, cli, "", map[string]string{"/x": selfcheck["a"]}, []string{"/x"}, nil); err == nil {
		t.Error("build without a reference: no error")
	}
	if _, err := cli.ImageInspect(ctx, ref); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect after failed builds: %v, want not found", err)
	}
}

func TestEnsure(t *testing.T) {
	cli := needEngine(t)
	ctx := context.Background()
	ref := testRef(t, cli)
	entrypoint := []string{"/selfcheck", "check"}
	labels := map[string]string{testLabel: "dockerimage"}
	ensure := func(variant string) (bool, string) {
		t.Helper()
		built, err := Ensure(ctx, cli, ref, map[string]string{"/selfcheck": selfcheck[variant]}, entrypoint, labels)
		if err != nil {
			t.Fatalf("Ensure(variant %s): %v", variant, err)
		}
		img, err := cli.ImageInspect(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return built, img.ID
	}

	built, first := ensure("a")
	if !built {
		t.Fatal("first Ensure did not build")
	}
	if built, id := ensure("a"); built || id != first {
		t.Errorf("second Ensure of the same binary: built=%v, image %s → %s; want no build", built, first, id)
	}
	built, second := ensure("b")
	if !built || second == first {
		t.Fatalf("Ensure of another binary: built=%v, image %s → %s; want a new image", built, first, second)
	}
	if _, err := cli.ImageInspect(ctx, first); !cerrdefs.IsNotFound(err) {
		t.Errorf("the replaced image %s: %v, want removed", first, err)
	}
	if code := runImage(t, cli, ref, "b"); code != 0 {
		t.Errorf("the rebuilt image runs variant a, or fails: exit %d", code)
	}

	// An image of that name built some other way (no digest label) is
	// replaced.
	if err := Build(ctx, cli, ref, map[string]string{"/selfcheck": selfcheck["b"]}, entrypoint, labels); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageRemove(ctx, second, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
		t.Errorf("remove the image Build untagged: %v", err)
	}
	if built, _ := ensure("b"); !built {
		t.Error("Ensure over an image without the digest label did not build")
	}
}
