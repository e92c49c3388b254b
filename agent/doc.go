// Package agent is the worker side of a node: it keeps a session with the
// leader's dispatcher, sends heartbeats, follows the leader when it moves,
// tells its owner what the cluster wants of the node (its role, the
// managers it may reach), and runs the tasks assigned to the node through
// an executor (agent/exec), reporting their states.
//
// A node creates its executor once and gives it to every agent it runs:
// tasks keep running across sessions, leader changes and role switches,
// and a new agent adopts them from the assignments it receives. One
// goroutine runs each task's state machine while it has work; state
// reports are batched per burst and sent again in full on every new
// session, so a new leader learns the latest state of every task.
//
// The agent never imports the orchestrator: it speaks to managers only
// through the api package's Dispatcher service.
package agent
