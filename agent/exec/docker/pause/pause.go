// Package pause is the process of a task's sandbox container (`shoald
// pause`). It joins the network namespace the agent pinned for the task,
// bind-mounted into the container, and holds it while the task's own
// container comes and goes: the engine joins the task's container to the
// namespace of this process's main thread (/proc/<pid>/ns/net).
//
// setns(2) moves only the calling thread, so Run must be called on the
// main thread: the program locks it in an init function (init functions run
// there, and locking it makes main run there too).
package pause

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Run joins the network namespace at netnsPath ("" joins none) and blocks
// until SIGTERM or SIGINT.
func Run(netnsPath string) error {
	if netnsPath != "" {
		if err := join(netnsPath); err != nil {
			return err
		}
	}
	// As PID 1 in its container, it also reaps nothing: nothing else runs there.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}

// join moves the main thread into the network namespace at path, then
// drops the thread's capabilities: the sandbox needs CAP_SYS_ADMIN for
// setns(2) and nothing afterwards.
func join(path string) error {
	if unix.Gettid() != os.Getpid() {
		return fmt.Errorf("pause: not on the main thread (tid %d, pid %d)", unix.Gettid(), os.Getpid())
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("pause: open the netns: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("pause: join the netns at %s: %w", path, err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData
	if err := unix.Capset(&hdr, &none[0]); err != nil {
		return fmt.Errorf("pause: drop capabilities: %w", err)
	}
	return nil
}
