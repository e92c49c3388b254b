// Package ipam hands out the addresses of a network's subnets: one Pool per subnet, with
// allocate-next, allocate-specific (pins) and release, and a cooldown before a released address is
// handed out again. It is pure — no I/O, no goroutines, no clock — and imports only the standard
// library and the project's api types (ConfigOf reads a subnet of a network spec into a Config);
// the sticky (service, network, slot) → address logic of orchestrator/allocator sits on top of it.
//
// # Contract
//
// A Pool is deterministic: the same Config and the same calls, with the same now arguments, give
// the same answers. That is what lets a new leader rebuild the old leader's pools from replicated
// records. The caller's duties, in order:
//
//  1. Build the pool with New from the network's replicated Config (ConfigOf reads it from the
//     network's spec; the Cooldown is the caller's to set). New refuses what cannot work (IPv4
//     /31 and /32, IPv6 /127 and /128; a gateway, range or reserved address outside the subnet)
//     with an *Error naming the field.
//  2. Pass now from the replicated record that causes the call (the raft entry's timestamp), not
//     from a local clock, and never less than a now already passed. The pool compares wall-clock
//     nanoseconds (monotonic readings are ignored), so times read back from records compare
//     exactly as the originals did.
//  3. Record every outcome in a replicated record before acting on it: each allocated address,
//     each release with its time, and the address AllocateNext returned last (State.Last, the
//     serial cursor). A new leader calls New with the same Config and Restore with a State built
//     from those records; the rebuilt pool then answers every call as the old one would have.
//  4. Serialise calls: a Pool is not safe for concurrent use.
//
// # Allocation
//
// AllocateNext is serial, as libnetwork's: it continues after the address it handed out last,
// within the dynamic range (Config.Dynamic, --ip-range), and wraps around at the range's end, so a
// freed address is handed out again as late as possible. It skips the gateway, reserved addresses
// (Config.Reserved, --aux-address), allocated addresses and addresses cooling down. The network
// address (IPv4 and IPv6 alike: in IPv6 it is the subnet-router anycast address) and the IPv4
// broadcast address are never assignable.
//
// AllocateSpecific pins an address: any assignable address of the subnet but the gateway,
// reserved ones and ones outside the dynamic range included. Pins do not move AllocateNext's
// cursor.
//
// # Cooldown
//
// Release starts the address's cooldown (Config.Cooldown). Until it has passed, AllocateNext
// skips the address, so stale ARP and neighbour entries, conntrack entries and forwarding entries
// elsewhere in the cluster that still point at the previous holder cannot deliver its traffic to
// a new owner. A pin of a cooling address is refused with ErrCoolingDown for the same reason: the
// stale state is there whoever chose the address. The exception is when the previous holder and
// the new one have the same owner — a slot taking back the address it held, after a pin change is
// rolled back — for then the stale entries point at the right owner anyway. The pool knows
// addresses, not owners, so the caller, which does, says so by passing TakeCooling.
//
// # Cost
//
// A pool keeps only its allocated and cooling addresses, and allocated ones as runs of
// consecutive addresses, so a /8 costs what its allocations cost, not 2^24 bits. AllocateNext
// looks the cursor up in an ordered set of the runs of blocked addresses (allocated, cooling,
// reserved, gateway), kept maximal, so the address after the cursor's run is free: O(log runs)
// however full the pool is around the cursor. Addresses are 128-bit integers (IPv4 mapped into
// IPv6), so IPv4 and IPv6 share every line.
package ipam
