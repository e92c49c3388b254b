package ctltest

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

func TestFindRefAndListBindings(t *testing.T) {
	svc := func(id, name string) *api.Service {
		return &api.Service{Id: id, Spec: &api.ServiceSpec{Annotations: &api.Annotations{Name: name}}}
	}
	services := []*api.Service{svc("web0001", "web"), svc("web0002", "api")}
	networks := []*api.Network{{Id: "net1", Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "front"}}}}
	bindings := []*api.IPBinding{
		{Id: "a", ServiceId: "web0001", NetworkId: "net1"},
		{Id: "b", ServiceId: "web0002", NetworkId: "net1"},
		{Id: "c", ServiceId: "web0001", NetworkId: "net2"},
	}
	for _, tt := range []struct {
		name     string
		req      *api.ListBindingsRequest
		wantIDs  []string
		wantCode codes.Code
	}{
		{"all", &api.ListBindingsRequest{}, []string{"a", "b", "c"}, codes.OK},
		{"by name", &api.ListBindingsRequest{ServiceIds: []string{"web"}}, []string{"a", "c"}, codes.OK},
		{"by ID and network name", &api.ListBindingsRequest{ServiceIds: []string{"web0002"}, NetworkIds: []string{"front"}}, []string{"b"}, codes.OK},
		{"by unique prefix", &api.ListBindingsRequest{NetworkIds: []string{"ne"}}, []string{"a", "b"}, codes.OK},
		{"ambiguous prefix", &api.ListBindingsRequest{ServiceIds: []string{"web000"}}, nil, codes.InvalidArgument},
		{"unknown", &api.ListBindingsRequest{ServiceIds: []string{"db"}}, nil, codes.NotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := ListBindings(tt.req, services, networks, bindings)
			if status.Code(err) != tt.wantCode {
				t.Fatalf("error %v, want code %v", err, tt.wantCode)
			}
			var ids []string
			for _, b := range resp.GetBindings() {
				ids = append(ids, b.GetId())
			}
			if len(ids) != len(tt.wantIDs) {
				t.Fatalf("bindings %v, want %v", ids, tt.wantIDs)
			}
			for i := range ids {
				if ids[i] != tt.wantIDs[i] {
					t.Errorf("bindings %v, want %v", ids, tt.wantIDs)
				}
			}
		})
	}
}
