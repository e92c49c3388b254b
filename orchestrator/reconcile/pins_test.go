package reconcile

import (
	"testing"

	"github.com/shoal/shoal/api"
)

func TestAddressesMatchPins(t *testing.T) {
	spec := func(pins map[uint64]string, rng string) *api.TaskSpec {
		return &api.TaskSpec{Networks: []*api.NetworkAttachmentConfig{{Target: "n1", Ips: pins, IpRange: rng}}}
	}
	service := func(ts *api.TaskSpec) *api.Service {
		return &api.Service{Spec: &api.ServiceSpec{Task: ts}}
	}
	attached := func(addr string) []*api.NetworkAttachment {
		return []*api.NetworkAttachment{{NetworkId: "n1", Address: addr}}
	}
	for _, tc := range []struct {
		name    string
		service *api.TaskSpec
		task    *api.TaskSpec
		att     []*api.NetworkAttachment
		want    bool
	}{
		{"no pins, attached", spec(nil, ""), spec(nil, ""), attached("10.0.0.7/24"), true},
		{"pin agrees with the address", spec(map[uint64]string{2: "10.0.0.9"}, ""), spec(nil, ""), attached("10.0.0.9/24"), true},
		{"pin moved away from the address", spec(map[uint64]string{2: "10.0.0.10"}, ""), spec(map[uint64]string{2: "10.0.0.9"}, ""), attached("10.0.0.9/24"), false},
		{"range pins slot 2 to its second address", spec(nil, "10.0.0.20-10.0.0.29"), spec(nil, ""), attached("10.0.0.21/24"), true},
		{"unattached, own spec pins the same", spec(map[uint64]string{2: "10.0.0.9"}, ""), spec(map[uint64]string{2: "10.0.0.9"}, ""), nil, true},
		{"unattached, own spec pins another address", spec(map[uint64]string{2: "10.0.0.10"}, ""), spec(map[uint64]string{2: "10.0.0.9"}, ""), nil, false},
		{"unattached, own spec pins, the service no longer does", spec(nil, ""), spec(map[uint64]string{2: "10.0.0.9"}, ""), nil, false},
		{"unattached, neither pins", spec(nil, ""), spec(nil, ""), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := &api.Task{Slot: 2, Spec: tc.task, Networks: tc.att}
			if got := AddressesMatchPins(service(tc.service), task); got != tc.want {
				t.Fatalf("AddressesMatchPins = %v, want %v", got, tc.want)
			}
		})
	}
}
