package api

// TaskMessagePendingScheduling is the status message of a task made
// PENDING that no scheduler has looked at yet. The scheduler replaces it
// with its reason when it cannot place the task, so a pending task with
// any other message says why it waits.
const TaskMessagePendingScheduling = "pending task scheduling"
