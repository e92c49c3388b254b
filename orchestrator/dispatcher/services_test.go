package dispatcher_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// servicesOf renders a message's service view changes as
// "name mode ports vips" and "-id".
func servicesOf(m *api.AssignmentsMessage) []string {
	var out []string
	for _, v := range m.Services {
		var ports, vips []string
		for _, p := range v.Ports {
			ports = append(ports, fmt.Sprintf("%d:%d", p.PublishedPort, p.TargetPort))
		}
		for _, vip := range v.Vips {
			vips = append(vips, vip.NetworkId+"="+vip.Ip)
		}
		out = append(out, fmt.Sprintf("%s %s [%s] [%s] nets=%s", v.Name, strings.ToLower(strings.TrimPrefix(v.Mode.String(), "MODE_")),
			strings.Join(ports, ","), strings.Join(vips, ","), strings.Join(v.Networks, ",")))
	}
	for _, id := range m.RemovedServices {
		out = append(out, "-"+id)
	}
	return out
}

func (e *testEnv) commit(t *testing.T, fn func(tx store.Tx) error) {
	t.Helper()
	if err := e.store.Update(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

func webService(mode api.EndpointSpec_Mode, ports ...*api.PortConfig) *api.Service {
	return &api.Service{Id: "svc1", Spec: &api.ServiceSpec{
		Annotations: &api.Annotations{Name: "web"},
		Task:        &api.TaskSpec{Networks: []*api.NetworkAttachmentConfig{{Target: "net1"}}},
		Endpoint:    &api.EndpointSpec{Mode: mode, Ports: ports},
	}}
}

// Every stream carries every service's mesh view (name, mode, ports, networks
// and the VIPs of its VIP bindings), then each change of it.
func TestServiceViews(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_READY))
	vip := &api.IPBinding{Id: "b-vip", ServiceId: "svc1", NetworkId: "net1", Kind: api.IPBinding_KIND_VIP, Address: "10.0.0.2/24"}
	e.commit(t, func(tx store.Tx) error {
		if err := tx.Create(webService(api.EndpointSpec_MODE_VIP, &api.PortConfig{TargetPort: 80, PublishedPort: 8080})); err != nil {
			return err
		}
		return tx.Create(vip)
	})
	e.run(t)
	sid := e.session(t, node1, "192.0.2.1:5000", withVTEP("192.0.2.1")).recv(t).SessionId
	a := e.assignments(t, node1, sid)
	first := a.recv(t)
	if first.Type != api.AssignmentsMessage_TYPE_COMPLETE {
		t.Fatalf("first message is %v, want COMPLETE", first.Type)
	}
	if got, want := servicesOf(first), []string{"web vip [8080:80] [net1=10.0.0.2] nets=net1"}; !slices.Equal(got, want) {
		t.Fatalf("COMPLETE services %v, want %v", got, want)
	}
	update := func(change func(s *api.Service)) func(tx store.Tx) error {
		return func(tx store.Tx) error {
			s := tx.Service("svc1")
			if s == nil {
				return errors.New("no service svc1")
			}
			change(s)
			return tx.Update(s)
		}
	}
	steps := []struct {
		name   string
		change func(tx store.Tx) error
		want   []string
	}{
		{"a published port added", update(func(s *api.Service) {
			s.Spec.Endpoint.Ports = append(s.Spec.Endpoint.Ports, &api.PortConfig{TargetPort: 53, PublishedPort: 5353, Protocol: api.PortConfig_PROTOCOL_UDP})
		}), []string{"web vip [8080:80,5353:53] [net1=10.0.0.2] nets=net1"}},
		{"a VIP binding removed", func(tx store.Tx) error {
			return tx.Delete(tx.Binding("b-vip"))
		}, []string{"web vip [8080:80,5353:53] [] nets=net1"}},
		{"a VIP binding made", func(tx store.Tx) error {
			return tx.Create(&api.IPBinding{Id: "b-vip2", ServiceId: "svc1", NetworkId: "net1", Kind: api.IPBinding_KIND_VIP, Address: "10.0.0.9/24"})
		}, []string{"web vip [8080:80,5353:53] [net1=10.0.0.9] nets=net1"}},
		{"switched to dnsrr: no VIP even while its binding lasts", update(func(s *api.Service) {
			s.Spec.Endpoint = &api.EndpointSpec{Mode: api.EndpointSpec_MODE_DNSRR}
		}), []string{"web dnsrr [] [] nets=net1"}},
	}
	for _, st := range steps {
		e.commit(t, st.change)
		if got := servicesOf(a.recv(t)); !slices.Equal(got, st.want) {
			t.Fatalf("%s: services %v, want %v", st.name, got, st.want)
		}
	}
	// A label change alone sends nothing; the removal that follows is the next message.
	e.commit(t, update(func(s *api.Service) { s.Spec.Annotations.Labels = map[string]string{"a": "b"} }))
	e.commit(t, func(tx store.Tx) error { return tx.Delete(tx.Service("svc1")) })
	if got, want := servicesOf(a.recv(t)), []string{"-svc1"}; !slices.Equal(got, want) {
		t.Fatalf("after a label change and the removal: services %v, want %v", got, want)
	}
}
