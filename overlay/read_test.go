package overlay

import (
	"fmt"
	"slices"
	"testing"
)

// Read gives the kernel's device and entries as they are: after a Sync, exactly the desired
// ones, permanent, and the bridge's static entries on the device's port; without a device, a report that says so.
func TestReadReportsTheKernel(t *testing.T) {
	bed := newTestbed(t, 2)
	n0, n1 := bed.nodes[0], bed.nodes[1]
	a, b := n0.addTask(taskIP(30)), n1.addTask(taskIP(31))

	var before Kernel
	inNetns(t, n0.ns, func() (err error) { before, err = n0.mgr.Read(testNetwork.ID); return err })
	if before.Device.Exists || len(before.FDB)+len(before.Neighbours) != 0 {
		t.Fatalf("Read before any Sync: %+v, want no device", before)
	}

	bed.syncAll(bed.desired(a, b))
	var k Kernel
	inNetns(t, n0.ns, func() (err error) { k, err = n0.mgr.Read(testNetwork.ID); return err })
	d := k.Device
	if !d.Exists || d.VNI != testNetwork.VNI || d.Local != n0.vtep || d.Port != DefaultPort || d.MTU != testNetwork.MTU ||
		d.Master != testNetwork.Bridge || !d.Up || d.Learning || !d.Proxy || len(d.Problems) != 0 {
		t.Errorf("device %+v", d)
	}
	var fdb, neigh []string
	for _, e := range k.FDB {
		fdb = append(fdb, fmt.Sprintf("%s→%s %v", e.MAC, e.VTEP, e.Permanent))
	}
	for _, e := range k.Neighbours {
		neigh = append(neigh, fmt.Sprintf("%s→%s %v", e.IP, e.MAC, e.Permanent))
	}
	wantFDB := []string{"00:00:00:00:00:00→" + n1.vtep.String() + " true", macOfIP(b.ip).String() + "→" + n1.vtep.String() + " true"}
	wantNeigh := []string{b.ip.String() + "→" + macOfIP(b.ip).String() + " true"}
	if !slices.Equal(fdb, wantFDB) || !slices.Equal(neigh, wantNeigh) {
		t.Errorf("Read FDB %v neighbours %v, want %v and %v", fdb, neigh, wantFDB, wantNeigh)
	}
	// a's MAC is learnt on its own port, not the device's: only b's static entry is there.
	if got, want := fmt.Sprint(k.Bridge), fmt.Sprint([]KernelBridge{{MAC: b.mac, Kind: BridgeStatic}}); got != want {
		t.Errorf("Read bridge entries %s, want %s", got, want)
	}
	if _, err := n0.mgr.Read("bad/id"); err == nil {
		t.Error("Read of an invalid network ID: no error")
	}
}
