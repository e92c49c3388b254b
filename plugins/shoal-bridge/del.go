// This file holds DEL. It deletes the attachment's host veth by its derived
// name, which takes the container end with it, so it works when the
// namespace is gone or was never given, and again after a first DEL. The
// bridge and its firewall rules stay: other attachments may use them, and GC
// removes the rules once the bridge itself is gone.

package main

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/plugins/pkg/ipam"
)

func cmdDel(args *skel.CmdArgs) error {
	conf, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	hostName := hostVethName(args.ContainerID, args.IfName)
	if err := deleteLinkIfExists(hostName); err != nil {
		return fmt.Errorf("delete the veth pair of container %s interface %s: %w", args.ContainerID, args.IfName, err)
	}
	return ipam.ExecDel(conf.IPAM.Type, args.StdinData)
}
