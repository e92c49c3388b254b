// Package api holds shoal's protobuf types and gRPC services, generated from
// the .proto files beside this file by `make proto`. It imports nothing of
// the project.
package api

//go:generate protoc -I . -I /usr/include --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative objects.proto raft.proto ca.proto dispatcher.proto control.proto
