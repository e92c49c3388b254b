// Package api holds shoal's protobuf types and gRPC services, generated from
// the .proto files beside this file by `make proto`. It imports nothing of
// the project.
package api

//
// The .proto files are compiled from the repository's root (`make proto`),
// so they register as api/<name>.proto and cannot clash with other modules'
// files of the same name (etcd's raft.proto).
