package cni_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/api"
)

// A network with one subnet and the reference bandwidth plugin chained after
// shoal's own.
func ExampleManager_Conflist() {
	cache, err := os.MkdirTemp("", "shoal-cni-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(cache)
	m, err := cni.New(cni.Config{CacheDir: cache})
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := m.Conflist(&api.Network{
		Id: "k3v9x0a7c1m2q8r4t6y5z0w1p",
		Spec: &api.NetworkSpec{
			Annotations: &api.Annotations{Name: "web-net"},
			Ipam:        []*api.IPAMConfig{{Subnet: "198.18.0.0/24"}},
			Plugins:     []*api.CNIPlugin{{Type: "bandwidth", ConfigJson: `{"ingressRate": 1000000, "ingressBurst": 100000}`}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.String())
	// Output:
	// {
	//   "cniVersion": "1.1.0",
	//   "name": "k3v9x0a7c1m2q8r4t6y5z0w1p",
	//   "plugins": [
	//     {
	//       "type": "shoal-bridge",
	//       "bridge": "shlk3v9x0a7c1",
	//       "mtu": 1450,
	//       "hairpinMode": true,
	//       "ipMasq": true,
	//       "capabilities": {
	//         "ips": true,
	//         "mac": true
	//       },
	//       "ipam": {
	//         "type": "shoal-ipam",
	//         "subnets": [
	//           {
	//             "subnet": "198.18.0.0/24",
	//             "gateway": "198.18.0.1"
	//           }
	//         ],
	//         "routes": [
	//           {
	//             "dst": "0.0.0.0/0"
	//           }
	//         ]
	//       }
	//     },
	//     {
	//       "ingressBurst": 100000,
	//       "ingressRate": 1000000,
	//       "type": "bandwidth"
	//     }
	//   ]
	// }
}

func ExampleMACOf() {
	for _, p := range []string{"198.18.0.5/24", "fd00:5::1:2:3/64"} {
		mac, err := cni.MACOf(p)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(p, mac)
	}
	// Output:
	// 198.18.0.5/24 02:42:c6:12:00:05
	// fd00:5::1:2:3/64 02:42:00:02:00:03
}
