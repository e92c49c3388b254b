package docker

// This file owns how a task's containers are named and labelled. Names are
// for people (docker ps); labels are how the executor finds a task's
// containers again, so they never change meaning.

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal/shoal/api"
)

// Ownership labels, set on both of a task's containers.
const (
	LabelTaskID      = "dev.shoal.task.id"
	LabelServiceID   = "dev.shoal.service.id"
	LabelServiceName = "dev.shoal.service.name"
	LabelSlot        = "dev.shoal.slot"
	LabelNodeID      = "dev.shoal.node.id"
	// LabelRole is RoleSandbox or RoleTask.
	LabelRole = "dev.shoal.role"
)

// Values of LabelRole.
const (
	RoleSandbox = "sandbox"
	RoleTask    = "task"
)

// sandboxSuffix ends a sandbox container's name.
const sandboxSuffix = "-sandbox"

// slotName is the task's place in its service as people say it:
// "<service>.<slot>", or "<service>.<node ID>" for a global service's task
// (slot 0).
func slotName(t *api.Task, nodeID string) string {
	service := t.GetServiceName()
	if service == "" {
		service = "task"
	}
	if t.GetSlot() == 0 {
		return service + "." + nodeID
	}
	return service + "." + strconv.FormatUint(t.GetSlot(), 10)
}

// containerName is the name of t's container: "<slot name>.<task ID>".
func containerName(t *api.Task, nodeID string) string {
	return engineName(slotName(t, nodeID) + "." + t.GetId())
}

// sandboxName is the name of t's sandbox container.
func sandboxName(t *api.Task, nodeID string) string {
	return containerName(t, nodeID) + sandboxSuffix
}

// invalidNameChars are the characters the engine refuses in container
// names (it takes [a-zA-Z0-9][a-zA-Z0-9_.-]*).
var invalidNameChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// engineName makes s a valid container name: invalid characters become
// "-" and a name not starting with a letter or digit gets an "x" prefix.
func engineName(s string) string {
	s = invalidNameChars.ReplaceAllString(s, "-")
	if s == "" || !isAlnum(s[0]) {
		s = "x" + s
	}
	return s
}

// hostnameMax is the longest hostname the kernel takes (HOST_NAME_MAX is
// 64 with the terminating NUL).
const hostnameMax = 63

// hostname is the sandbox's (and so the task's) hostname: the slot name
// made an RFC 1123 name, since the engine refuses other hostnames. Each
// dot-separated label keeps letters, digits and inner hyphens; other
// characters become hyphens. It is cut to hostnameMax characters.
func hostname(t *api.Task, nodeID string) string {
	var labels []string
	for _, label := range strings.Split(slotName(t, nodeID), ".") {
		b := []byte(label)
		for i, c := range b {
			if !isAlnum(c) && c != '-' {
				b[i] = '-'
			}
		}
		if label = strings.Trim(string(b), "-"); label != "" {
			labels = append(labels, label)
		}
	}
	h := strings.Join(labels, ".")
	if len(h) > hostnameMax {
		h = strings.TrimRight(h[:hostnameMax], ".-")
	}
	if h == "" {
		return "task"
	}
	return h
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ownershipLabels are the labels that tie a container to t on this node.
func ownershipLabels(t *api.Task, nodeID, role string) map[string]string {
	return map[string]string{
		LabelTaskID:      t.GetId(),
		LabelServiceID:   t.GetServiceId(),
		LabelServiceName: t.GetServiceName(),
		LabelSlot:        strconv.FormatUint(t.GetSlot(), 10),
		LabelNodeID:      nodeID,
		LabelRole:        role,
	}
}

// taskEnv is the env of t's container: the spec's, then what the task
// learns about its place, SHOAL_TASK_ID, SHOAL_SERVICE_ID,
// SHOAL_SERVICE_NAME, SHOAL_SLOT and SHOAL_NODE_ID, which replace the
// spec's of the same names.
func taskEnv(t *api.Task, nodeID string) []string {
	own := []string{
		"SHOAL_TASK_ID=" + t.GetId(),
		"SHOAL_SERVICE_ID=" + t.GetServiceId(),
		"SHOAL_SERVICE_NAME=" + t.GetServiceName(),
		"SHOAL_SLOT=" + strconv.FormatUint(t.GetSlot(), 10),
		"SHOAL_NODE_ID=" + nodeID,
	}
	spec := t.GetSpec().GetContainer().GetEnv()
	env := make([]string, 0, len(spec)+len(own))
	for _, kv := range spec {
		key, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(own, func(o string) bool { return strings.HasPrefix(o, key+"=") }) {
			env = append(env, kv)
		}
	}
	return append(env, own...)
}
