// Command fakeplugin is a CNI plugin for agent/cni's tests. It touches no
// kernel state: it appends each call it gets (command, stdin config, container
// ID, netns, ifname, CNI_ARGS, runtimeConfig, valid attachments) as one JSON
// line to calls.jsonl next to its binary, and answers ADD with its prevResult,
// or a result for the runtimeConfig ips when it is first in the chain.
//
// Two config fields make it fail: "failAdd" (ADD returns that message) and
// "statusError" (STATUS returns code 50 with that message).
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// Call is one recorded invocation; agent/cni's tests decode the same shape.
type Call struct {
	Command          string               `json:"command"`
	Type             string               `json:"type"`
	Name             string               `json:"name"`
	CNIVersion       string               `json:"cniVersion"`
	ContainerID      string               `json:"containerID"`
	Netns            string               `json:"netns"`
	IfName           string               `json:"ifName"`
	Args             string               `json:"args"`
	RuntimeConfig    json.RawMessage      `json:"runtimeConfig,omitempty"`
	PrevResult       bool                 `json:"prevResult"`
	ValidAttachments []types.GCAttachment `json:"validAttachments,omitempty"`
	Config           json.RawMessage      `json:"config"`
}

type conf struct {
	types.PluginConf
	RuntimeConfig struct {
		IPs []string `json:"ips,omitempty"`
		MAC string   `json:"mac,omitempty"`
	} `json:"runtimeConfig"`
	FailAdd     string `json:"failAdd"`
	StatusError string `json:"statusError"`
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    func(a *skel.CmdArgs) error { return run("ADD", a) },
		Check:  func(a *skel.CmdArgs) error { return run("CHECK", a) },
		Del:    func(a *skel.CmdArgs) error { return run("DEL", a) },
		GC:     func(a *skel.CmdArgs) error { return run("GC", a) },
		Status: func(a *skel.CmdArgs) error { return run("STATUS", a) },
	}, version.PluginSupports("0.4.0", "1.0.0", "1.1.0"), "agent/cni test plugin")
}

func run(command string, a *skel.CmdArgs) error {
	var c conf
	if err := json.Unmarshal(a.StdinData, &c); err != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	var raw struct {
		RuntimeConfig json.RawMessage `json:"runtimeConfig"`
	}
	if err := json.Unmarshal(a.StdinData, &raw); err != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	if err := record(Call{
		Command:          command,
		Type:             c.Type,
		Name:             c.Name,
		CNIVersion:       c.CNIVersion,
		ContainerID:      a.ContainerID,
		Netns:            a.Netns,
		IfName:           a.IfName,
		Args:             a.Args,
		RuntimeConfig:    raw.RuntimeConfig,
		PrevResult:       c.RawPrevResult != nil,
		ValidAttachments: c.ValidAttachments,
		Config:           a.StdinData,
	}); err != nil {
		return err
	}
	switch {
	case command == "ADD" && c.FailAdd != "":
		return types.NewError(types.ErrInternal, c.FailAdd, "")
	case command == "STATUS" && c.StatusError != "":
		return types.NewError(types.ErrPluginNotAvailable, c.StatusError, "")
	case command == "ADD":
		return printResult(&c, a)
	}
	return nil
}

// printResult answers ADD: the previous plugin's result passed on, or a fresh
// one holding the runtimeConfig ips on CNI_IFNAME.
func printResult(c *conf, a *skel.CmdArgs) error {
	if c.RawPrevResult != nil {
		if err := version.ParsePrevResult(&c.PluginConf); err != nil {
			return fmt.Errorf("parse prevResult: %w", err)
		}
		return types.PrintResult(c.PrevResult, c.CNIVersion)
	}
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: a.IfName, Mac: c.RuntimeConfig.MAC, Sandbox: a.Netns}},
	}
	for _, s := range c.RuntimeConfig.IPs {
		ip, ipnet, err := net.ParseCIDR(s)
		if err != nil {
			return fmt.Errorf("runtimeConfig.ips: %w", err)
		}
		ipnet.IP = ip
		res.IPs = append(res.IPs, &current.IPConfig{Interface: current.Int(0), Address: *ipnet})
	}
	return types.PrintResult(res, c.CNIVersion)
}

// record appends call to calls.jsonl beside the binary, in one write.
func record(call Call) error {
	line, err := json.Marshal(call)
	if err != nil {
		return fmt.Errorf("encode call: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(os.Args[0]), "calls.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record call: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("record call: %w", err)
	}
	return f.Close()
}
