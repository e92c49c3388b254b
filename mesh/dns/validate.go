package dns

// This file checks the caller's input before anything changes: Config in New, the zones in Sync,
// the services and names in Update. Every refusal is a *FieldError naming the field and the
// reason.

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// maxLabel is the longest DNS label (RFC 1035 2.3.4).
const maxLabel = 63

// validateConfig checks cfg and returns it with its defaults filled in.
func validateConfig(cfg Config) (Config, error) {
	if cfg.Port < 0 || cfg.Port > 65535 {
		return cfg, &FieldError{Field: "Config.Port", Reason: fmt.Sprintf("%d is not a port number (0 means 53)", cfg.Port)}
	}
	if cfg.Port == 0 {
		cfg.Port = 53
	}
	if cfg.TTL == 0 {
		cfg.TTL = 1
	}
	seen := make(map[netip.AddrPort]int, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		field := fmt.Sprintf("Config.Upstreams[%d]", i)
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			return cfg, &FieldError{Field: field, Reason: fmt.Sprintf("%q is not ip:port (a resolver cannot be named by a host name): %v", u, err)}
		}
		if ap.Port() == 0 || ap.Addr().IsUnspecified() {
			return cfg, &FieldError{Field: field, Reason: fmt.Sprintf("%q names no reachable resolver", u)}
		}
		if j, dup := seen[ap]; dup {
			return cfg, &FieldError{Field: field, Reason: fmt.Sprintf("%q repeats Config.Upstreams[%d]", u, j)}
		}
		seen[ap] = i
	}
	cfg.Upstreams = append([]string(nil), cfg.Upstreams...)
	return cfg, nil
}

// validateZones checks zones as a whole: unique networks and listen addresses, and each zone.
func validateZones(zones []Zone) error {
	networks := make(map[string]int, len(zones))
	listens := make(map[netip.Addr]int, len(zones))
	for i, z := range zones {
		if z.Network == "" {
			return &FieldError{Field: fmt.Sprintf("zones[%d].Network", i), Reason: "empty: a zone needs its network's ID"}
		}
		if j, dup := networks[z.Network]; dup {
			return &FieldError{Field: fmt.Sprintf("zones[%d].Network", i), Reason: fmt.Sprintf("%q repeats zones[%d]", z.Network, j)}
		}
		networks[z.Network] = i
		at := place{zone: i, network: z.Network}
		if z.Listen.IsValid() {
			if err := checkIPv4(at, "Listen", z.Listen); err != nil {
				return err
			}
			if z.Listen.IsMulticast() {
				return at.refuse("Listen", "%s is a multicast address, not a gateway", z.Listen)
			}
			if j, dup := listens[z.Listen]; dup {
				return at.refuse("Listen", "%s is zones[%d]'s too: a listener answers for one network", z.Listen, j)
			}
			listens[z.Listen] = i
		}
		if err := validateServices(at, z.Services); err != nil {
			return err
		}
	}
	return nil
}

// validateServices checks one zone's services.
func validateServices(zone place, services []Service) error {
	return validateServiceList(services, func(i int) place {
		at := zone
		at.inService, at.service, at.serviceName = true, i, services[i].Name
		return at
	})
}

// validateUpdate checks Update's input: the services of set as a zone's, the names of removed
// as service names.
func validateUpdate(set []Service, removed []string) error {
	err := validateServiceList(set, func(i int) place { return place{inSet: true, service: i} })
	if err != nil {
		return err
	}
	for i, name := range removed {
		if reason := labelProblem(name); reason != "" {
			return &FieldError{Field: "removed[" + strconv.Itoa(i) + "]", Reason: reason}
		}
	}
	return nil
}

// validateServiceList checks a list of services, the i-th of which is at where(i): each one's
// name and addresses, and that no name comes twice.
func validateServiceList(services []Service, where func(i int) place) error {
	names := make(map[string]int, len(services))
	for i, svc := range services {
		at := where(i)
		if err := checkLabel(at, svc.Name); err != nil {
			return err
		}
		lower := strings.ToLower(svc.Name)
		if j, dup := names[lower]; dup {
			return at.refuse("Name", "%q repeats %s (names are case-insensitive)", svc.Name, where(j))
		}
		names[lower] = i
		if err := validateService(at, svc); err != nil {
			return err
		}
	}
	return nil
}

// validateService checks one service's addresses.
func validateService(at place, svc Service) error {
	if svc.VIP.IsValid() {
		if err := checkIPv4(at, "VIP", svc.VIP); err != nil {
			return err
		}
	}
	for i, ip := range svc.Tasks {
		if err := checkIPv4(at, "Tasks["+strconv.Itoa(i)+"]", ip); err != nil {
			return err
		}
	}
	if j, i := firstRepeat(svc.Tasks); i >= 0 {
		return at.refuse("Tasks["+strconv.Itoa(i)+"]", "%s repeats Tasks[%d]: two running tasks cannot hold one IP", svc.Tasks[i], j)
	}
	if len(svc.Slots) == 0 {
		return nil
	}
	slots := make(map[netip.Addr]uint64, len(svc.Slots))
	numbers := make([]uint64, 0, len(svc.Slots))
	for slot := range svc.Slots {
		numbers = append(numbers, slot)
	}
	slices.Sort(numbers)
	for _, slot := range numbers { // sorted: the same input, the same error
		ip := svc.Slots[slot]
		field := "Slots[" + strconv.FormatUint(slot, 10) + "]"
		if slot == 0 {
			return at.refuse(field, "slot numbers start at 1")
		}
		if err := checkIPv4(at, field, ip); err != nil {
			return err
		}
		if other, dup := slots[ip]; dup {
			return at.refuse(field, "%s is Slots[%d]'s too: two slots cannot hold one IP", ip, other)
		}
		slots[ip] = slot
	}
	return nil
}

// place is where in the input a field is: a zone of Sync's, a service of a zone, or a service
// of Update's set. Field names are only formatted for an error, so that checking a big input
// stays cheap.
type place struct {
	zone        int
	network     string
	inService   bool // false: the zone itself
	service     int
	serviceName string
	inSet       bool // set[service] of Update's: no zone
}

// String is the place as a field path: zones[0](nw1), zones[0](nw1).Services[2](web),
// zones[0](nw1).Services[2] for a service without a name, or set[2].
func (p place) String() string {
	if p.inSet {
		return "set[" + strconv.Itoa(p.service) + "]"
	}
	path := fmt.Sprintf("zones[%d](%s)", p.zone, p.network)
	if p.inService {
		path += fmt.Sprintf(".Services[%d]", p.service)
		if p.serviceName != "" {
			path += "(" + p.serviceName + ")"
		}
	}
	return path
}

// refuse is a FieldError for the field of p.
func (p place) refuse(field, format string, args ...any) error {
	return &FieldError{Field: p.String() + "." + field, Reason: fmt.Sprintf(format, args...)}
}

// checkIPv4 refuses anything but a usable IPv4 address: shoal networks are IPv4 only.
func checkIPv4(at place, field string, ip netip.Addr) error {
	switch {
	case !ip.IsValid():
		return at.refuse(field, "no address")
	case !ip.Is4():
		return at.refuse(field, "%s is not an IPv4 address (shoal networks are IPv4 only)", ip)
	case ip.IsUnspecified():
		return at.refuse(field, "0.0.0.0 is not an address of anything")
	}
	return nil
}

// checkLabel refuses a service name that labelProblem finds a problem with.
func checkLabel(at place, name string) error {
	if reason := labelProblem(name); reason != "" {
		return at.refuse("Name", "%s", reason)
	}
	return nil
}

// labelProblem says why name cannot be a service's name, or "" when it can: a service name is
// one DNS label of letters, digits, '-' and '_', beginning and ending with a letter or digit (as
// swarm's service names).
func labelProblem(name string) string {
	if name == "" {
		return "empty"
	}
	if len(name) > maxLabel {
		return fmt.Sprintf("%q is %d characters long; a DNS label has at most %d", name, len(name), maxLabel)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		inner := c == '-' || c == '_'
		if alnum || inner && i > 0 && i < len(name)-1 {
			continue
		}
		return fmt.Sprintf("%q has %q at %d: a DNS label holds letters, digits, and '-' or '_' between them", name, c, i)
	}
	return ""
}

// ValidName reports whether name can be a service's name in a Zone: one DNS label (letters,
// digits, and '-' or '_' between them, at most 63 characters). Names the cluster allows but DNS
// cannot hold (dots, a trailing '-') are to be left out of the zones, not given to Sync.
func ValidName(name string) bool { return labelProblem(name) == "" }

// firstRepeat returns the indexes of the first address of list that occurs twice (the earlier
// one first), or -1, -1: by comparing pairs for a few, with a map for many (a global service's
// thousand tasks are checked on every Update of it).
func firstRepeat(list []netip.Addr) (first, repeat int) {
	if len(list) <= 32 {
		for i := 1; i < len(list); i++ {
			if j := slices.Index(list[:i], list[i]); j >= 0 {
				return j, i
			}
		}
		return -1, -1
	}
	seen := make(map[netip.Addr]int, len(list))
	for i, ip := range list {
		if j, ok := seen[ip]; ok {
			return j, i
		}
		seen[ip] = i
	}
	return -1, -1
}
