// Package ca is shoal's certificate authority: the cluster's root CA, join
// tokens, node certificate issuance and renewal, the node's on-disk
// credentials, and the authorization of every remote gRPC call.
//
// Every connection between nodes is mutually authenticated TLS with the
// cluster's root CA. A node's certificate names its node ID (Subject CN), its
// role (OU "shoal-manager" or "shoal-worker") and its cluster ID (O); peers
// are verified by chain, with the fixed server name "shoal-node".
//
// A manager's duties, in order:
//
//  1. On cluster creation call Bootstrap: it makes the root CA, the two join
//     tokens and the manager's own credentials; store the returned api.RootCA
//     in the Cluster object.
//  2. Serve the remote gRPC API with SecurityConfig.ServerTLSConfig and the
//     Authorizer's interceptors installed, so that no method is reachable
//     without the right certificate.
//  3. Register NewServer(backend, logger) as the CA service on that server.
//
// A node's duties, in order:
//
//  1. To join, call RequestCertificate with a join token; on restart call
//     LoadSecurityConfig on the same directory instead.
//  2. Dial peers with SecurityConfig.ClientTLSConfig.
//  3. Run RenewalLoop for as long as the node runs; call Renew directly when
//     the node learns its desired role changed.
//
// The package imports only api from the project, plus the standard library,
// grpc and protobuf's well-known types (timestamps on api.NodeCertificate).
package ca
