// Package cnitest tests shoal's CNI plugins end to end, the way a runtime
// uses them. TestMain builds shoal-bridge, shoal-ipam, cnitool and the
// reference tuning and bandwidth plugins into a temporary CNI_PATH; the tests
// run them on this host against throwaway network namespaces, bridges and
// iptables rules, and remove all of it afterwards, also when they fail.
//
// The tests need root, iproute2's ip (for named namespaces) and iptables;
// without them they skip, saying which is missing. Run them with
//
//	go test -count=1 ./plugins/cnitest/
//
// The package has no code outside its tests.
package cnitest
