package main

// This file owns `netctl dns lookup`: what a node's embedded DNS server answers a container of a
// network for a name, asked of the server itself (not over the network) by the node's agent.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newDNSCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "Ask a node's DNS server what it answers the containers of a network",
		Long: "Ask a node's embedded DNS server. Containers send their queries to their\n" +
			"network's gateway, where the server answers from that network's records:\n" +
			"<service> (its VIP, or its tasks' addresses in endpoint mode dnsrr),\n" +
			"tasks.<service> and <slot>.<service>; other names go to the node's resolvers.",
	}
	cmd.AddCommand(newDNSLookupCommand(a))
	return cmd
}

// dnsLookup is one answer of `dns lookup`.
type dnsLookup struct {
	Name      string   `json:"name"`
	Network   string   `json:"network"`
	NetworkID string   `json:"network_id"`
	Node      string   `json:"node"`
	NodeID    string   `json:"node_id"`
	Addrs     []string `json:"addrs"`
	Rcode     string   `json:"rcode"`
	Forwarded bool     `json:"forwarded"`
}

func newDNSLookupCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lookup NAME --network NETWORK",
		Short: "Show what a node's DNS server answers a container of NETWORK for NAME",
		Long: "Show the A records a node's DNS server answers a container of NETWORK (a\n" +
			"network name, ID or unique ID prefix) for NAME, as a query arriving on the\n" +
			"network's gateway would get them: the addresses, the response code (NOERROR,\n" +
			"NXDOMAIN, SERVFAIL...) and whether the name, not one of the cluster's, was\n" +
			"forwarded to the node's resolvers. --node is a hostname, ID or unique ID\n" +
			"prefix; default: the manager answering.",
		Example: "  netctl dns lookup web --network front\n" +
			"  netctl dns lookup tasks.web --network front --node node-2",
		Args: cli.ExactArgs(1, "NAME"),
	}
	network := cmd.Flags().String("network", "", "the network whose containers ask (required)")
	node := cmd.Flags().String("node", "", "the node whose DNS server to ask (default: the manager answering)")
	format, checkFormat := cli.AddFormatFlag(cmd, cli.FormatPretty, cli.FormatJSON)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name := args[0]
		if err := checkFormat(); err != nil {
			return err
		}
		if err := validateDNSName(name); err != nil {
			return &cli.UsageError{Err: err, CmdPath: cmd.CommandPath()}
		}
		if *network == "" {
			return &cli.UsageError{Err: errors.New("required flag --network not set: name the network whose containers ask"), CmdPath: cmd.CommandPath()}
		}
		return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
			v, err := inspectMesh(ctx, c, &api.InspectMeshRequest{Node: *node, DnsName: name, DnsNetwork: *network})
			if err != nil {
				return err
			}
			l, err := v.dnsLookup()
			if err != nil {
				return err
			}
			if *format == cli.FormatJSON {
				return cli.PrintJSONValue(a.stdout, l)
			}
			var f cli.Fields
			f.Add("Name", l.Name)
			f.Add("Network", fmt.Sprintf("%s (%s)", l.Network, l.NetworkID))
			f.Add("Node", fmt.Sprintf("%s (%s)", l.Node, l.NodeID))
			f.Add("Response", l.Rcode)
			f.Add("Addresses", cli.OrDash(strings.Join(l.Addrs, ", ")))
			f.Add("Forwarded", yesNo(l.Forwarded))
			return f.Write(a.stdout)
		})
	}
	return cmd
}

// dnsLookup is the node's answer, or why it gave none.
func (v meshView) dnsLookup() (dnsLookup, error) {
	ans := v.resp.GetDnsAnswer()
	switch {
	case ans == nil && v.resp.GetKernel().GetError() != "":
		return dnsLookup{}, fmt.Errorf("node %s gave no answer: %s", v.nodeName(), v.resp.GetKernel().GetError())
	case ans == nil:
		return dnsLookup{}, fmt.Errorf("node %s gave no answer", v.nodeName())
	case ans.GetError() != "":
		return dnsLookup{}, fmt.Errorf("node %s could not look up %s: %s", v.nodeName(), ans.GetName(), ans.GetError())
	}
	addrs := ans.GetAddrs()
	if addrs == nil {
		addrs = []string{} // JSON: [], not null
	}
	n := v.resp.GetNode()
	return dnsLookup{
		Name: ans.GetName(), Network: v.networkName(ans.GetNetworkId()), NetworkID: ans.GetNetworkId(),
		Node: v.nodeName(), NodeID: n.GetId(),
		Addrs: addrs, Rcode: ans.GetRcode(), Forwarded: ans.GetForwarded(),
	}, nil
}

// validateDNSName refuses what cannot be a DNS name: empty, longer than 253 characters, an empty
// or longer than 63 characters label, or spaces and control characters.
func validateDNSName(name string) error {
	fail := func(why string) error { return fmt.Errorf("invalid NAME %q: %s", name, why) }
	trimmed := strings.TrimSuffix(name, ".")
	switch {
	case trimmed == "":
		return fail("empty")
	case len(trimmed) > 253:
		return fail(fmt.Sprintf("%d characters, longer than 253", len(trimmed)))
	}
	for _, r := range trimmed {
		if r <= ' ' || r == 0x7f {
			return fail("holds a space or control character")
		}
	}
	for label := range strings.SplitSeq(trimmed, ".") {
		switch {
		case label == "":
			return fail("an empty label (two dots in a row, or a leading dot)")
		case len(label) > 63:
			return fail(fmt.Sprintf("label %q is %d characters, longer than 63", label, len(label)))
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
