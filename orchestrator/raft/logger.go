package raft

// This file adapts slog to the logger interface the raft library wants, so
// the library's elections and warnings land in the node's structured log.

import (
	"context"
	"fmt"
	"log/slog"
)

// raftLogger implements raft.Logger on top of slog.
type raftLogger struct {
	log *slog.Logger
}

func newRaftLogger(l *slog.Logger) *raftLogger {
	return &raftLogger{log: l.With("source", "etcd-raft")}
}

func (l *raftLogger) out(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l *raftLogger) Debug(v ...any) { l.out(slog.LevelDebug, fmt.Sprint(v...)) }
func (l *raftLogger) Debugf(format string, v ...any) {
	l.out(slog.LevelDebug, fmt.Sprintf(format, v...))
}
func (l *raftLogger) Info(v ...any)                 { l.out(slog.LevelInfo, fmt.Sprint(v...)) }
func (l *raftLogger) Infof(format string, v ...any) { l.out(slog.LevelInfo, fmt.Sprintf(format, v...)) }
func (l *raftLogger) Warning(v ...any)              { l.out(slog.LevelWarn, fmt.Sprint(v...)) }
func (l *raftLogger) Warningf(format string, v ...any) {
	l.out(slog.LevelWarn, fmt.Sprintf(format, v...))
}
func (l *raftLogger) Error(v ...any) { l.out(slog.LevelError, fmt.Sprint(v...)) }
func (l *raftLogger) Errorf(format string, v ...any) {
	l.out(slog.LevelError, fmt.Sprintf(format, v...))
}

// Fatal and Panic mean raft found its invariants broken; like the library's
// own logger, they panic after logging.
func (l *raftLogger) Fatal(v ...any) { l.Panic(v...) }
func (l *raftLogger) Fatalf(format string, v ...any) {
	l.Panicf(format, v...)
}
func (l *raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	l.out(slog.LevelError, msg)
	panic(msg)
}
func (l *raftLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.out(slog.LevelError, msg)
	panic(msg)
}
