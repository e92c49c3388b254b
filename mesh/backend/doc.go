// Package backend chooses a node's load-balancing backend: Open returns the mesh.Balancer of
// mesh/nft (nftables, every kernel) or mesh/ipvs (where the kernel has IP_VS), by the name an
// operator gives ("auto", "nftables" or "ipvs"). "auto" picks IPVS only where it is available.
//
// The package imports mesh, mesh/nft and mesh/ipvs; it touches the kernel only to look for
// IPVS (/proc/net/ip_vs in the calling thread's network namespace).
package backend
