package ca_test

import (
	"fmt"
	"log"

	"github.com/shoal/shoal/orchestrator/ca"
)

// A join token pins the cluster's root CA by its digest: a joining node
// compares it with the digest of the CA certificate a manager serves.
func ExampleGenerateJoinToken() {
	root, err := ca.NewRootCA("cluster-1")
	if err != nil {
		log.Fatal(err)
	}
	token, err := ca.GenerateJoinToken(root)
	if err != nil {
		log.Fatal(err)
	}
	parsed, err := ca.ParseJoinToken(token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(token), parsed.Digest == root.Digest())
	// Output: 84 true
}

// A malformed token is refused with an error naming the part that is wrong.
func ExampleParseJoinToken() {
	_, err := ca.ParseJoinToken("SHOAL-2-abc-def")
	fmt.Println(err)
	// Output: invalid join token: version is "2", want "1"
}
