package controlapi_test

import (
	"bytes"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/controlapi"
	"github.com/shoal/shoal/orchestrator/store"
)

func TestGetClusterStripsCAKeyAndFillsRaftState(t *testing.T) {
	e := newTestEnv(t)
	before := e.snapshot(t)

	resp, err := e.srv.GetCluster(t.Context(), &api.GetClusterRequest{})
	if err != nil {
		t.Fatalf("GetCluster: %v", err)
	}
	c := resp.GetCluster()
	if c.GetId() != testClusterID {
		t.Errorf("cluster ID %q, want %q", c.GetId(), testClusterID)
	}
	if len(c.GetRootCa().GetCaKeyPem()) != 0 {
		t.Error("GetCluster returned the root CA key")
	}
	if !bytes.Equal(c.GetRootCa().GetCaCertPem(), e.root.CertPEM) {
		t.Error("GetCluster dropped the root CA certificate")
	}
	if c.GetRootCa().GetJoinTokens().GetWorker() == "" || c.GetRootCa().GetJoinTokens().GetManager() == "" {
		t.Errorf("join tokens missing: %v", c.GetRootCa().GetJoinTokens())
	}
	if resp.LeaderId != localID || resp.RaftTerm != 7 || resp.RaftAppliedIndex != 42 || resp.ManagerNodeId != localID {
		t.Errorf("raft state: leader %q term %d applied %d manager %q; want %q 7 42 %q",
			resp.LeaderId, resp.RaftTerm, resp.RaftAppliedIndex, resp.ManagerNodeId, localID, localID)
	}
	// Stripping the key is done on a copy: the store keeps it.
	e.assertUnchanged(t, before)
	if len(e.cluster(t).GetRootCa().GetCaKeyPem()) == 0 {
		t.Error("GetCluster removed the CA key from the store")
	}
}

func TestGetClusterBeforeInit(t *testing.T) {
	s := store.New()
	s.SetProposer(&syncProposer{store: s})
	srv := controlapi.NewServer(s, &fakeMembership{}, localID, slog.New(slog.DiscardHandler))
	_, err := srv.GetCluster(t.Context(), &api.GetClusterRequest{})
	assertCode(t, err, codes.Unavailable, "not initialised")
}

func TestRotateJoinToken(t *testing.T) {
	tests := []struct {
		role api.NodeRole
	}{
		{api.NodeRole_NODE_ROLE_WORKER},
		{api.NodeRole_NODE_ROLE_MANAGER},
	}
	for _, tc := range tests {
		t.Run(tc.role.Name(), func(t *testing.T) {
			e := newTestEnv(t)
			old := e.cluster(t).GetRootCa().GetJoinTokens()
			oldVersion := e.cluster(t).GetMeta().GetVersion()

			resp, err := e.srv.RotateJoinToken(t.Context(), &api.RotateJoinTokenRequest{Role: tc.role})
			if err != nil {
				t.Fatalf("RotateJoinToken: %v", err)
			}
			stored := e.cluster(t)
			got := stored.GetRootCa().GetJoinTokens()
			rotated, kept := got.GetWorker(), got.GetManager()
			oldRotated, oldKept := old.GetWorker(), old.GetManager()
			if tc.role == api.NodeRole_NODE_ROLE_MANAGER {
				rotated, kept = got.GetManager(), got.GetWorker()
				oldRotated, oldKept = old.GetManager(), old.GetWorker()
			}
			if rotated == oldRotated {
				t.Errorf("the %s token did not change", tc.role.Name())
			}
			if kept != oldKept {
				t.Errorf("rotating the %s token changed the other one: %q -> %q", tc.role.Name(), oldKept, kept)
			}
			tok, err := ca.ParseJoinToken(rotated)
			if err != nil {
				t.Fatalf("the new token does not parse: %v", err)
			}
			if tok.Digest != e.root.Digest() {
				t.Errorf("the new token pins digest %s, the root CA's is %s", tok.Digest, e.root.Digest())
			}
			if resp.GetJoinTokens().GetWorker() != got.GetWorker() || resp.GetJoinTokens().GetManager() != got.GetManager() {
				t.Errorf("response tokens %v differ from the stored ones %v", resp.GetJoinTokens(), got)
			}
			if stored.GetMeta().GetVersion() <= oldVersion {
				t.Errorf("cluster version %d did not move past %d", stored.GetMeta().GetVersion(), oldVersion)
			}
			if len(stored.GetRootCa().GetCaKeyPem()) == 0 {
				t.Error("rotating a token lost the CA key")
			}
		})
	}
}

func TestRotateJoinTokenRefusesUnknownRole(t *testing.T) {
	for _, role := range []api.NodeRole{2, 7, -1} {
		t.Run(role.String(), func(t *testing.T) {
			e := newTestEnv(t)
			before := e.snapshot(t)
			_, err := e.srv.RotateJoinToken(t.Context(), &api.RotateJoinTokenRequest{Role: role})
			assertCode(t, err, codes.InvalidArgument, "role")
			e.assertUnchanged(t, before)
		})
	}
}
