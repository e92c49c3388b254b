// Package cni attaches a node's task sandboxes to their networks through CNI
// plugin chains, run with libcni. A network's chain is shoal-bridge (with the
// shoal-ipam IPAM plugin) followed by the operator's extra plugins of the
// network spec; Conflist renders it from the api.Network the agent received.
//
// libcni caches every successful ADD (config, CNI_ARGS, capability args and
// result) under Config.CacheDir. DetachSandbox and GC work from that cache, so
// they undo attachments made before an agent restart, of networks the node no
// longer knows, with the configuration that made them.
//
// The caller's duties, in order:
//
//  1. Call SetNetworks with the networks of every assignment before
//     attaching a task to them; AttachTask refuses a network it does not know
//     (ErrUnknownNetwork).
//  2. Call AttachTask once the sandbox's network namespace exists, and
//     DetachSandbox before or right after the sandbox is removed (netns "" when
//     the namespace is already gone). Calls for one sandbox must not overlap;
//     calls for different sandboxes may.
//  3. Call GC with every sandbox that exists, or whose creation has started,
//     when the call is made: GC deletes the cached attachments of all others
//     and lets the plugins remove what they hold for attachments nobody
//     cached (an agent that crashed mid-ADD). GC waits for attaches in flight
//     and holds new ones back while it runs, so only the list's staleness is
//     the caller's to avoid.
//  4. Refuse new tasks while Status returns an error.
//
// It imports the api and ipam packages of the project and nothing else of it;
// it never runs a plugin by hand, only through libcni.
package cni
