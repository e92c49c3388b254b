// Package agent is the worker side of a node: it keeps a session with the
// leader's dispatcher, sends heartbeats, follows the leader when it moves and
// tells its owner what the cluster wants of the node (its role, the managers
// it may reach). Later it runs tasks through executors and CNI.
//
// The agent never imports the orchestrator: it speaks to managers only
// through the api package's Dispatcher service.
package agent
