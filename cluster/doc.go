// Package cluster boots a bookd node's actor runtime: the protoactor-go actor
// system, remoting, the protoactor cluster with bookd's actor kinds, the
// cluster provider that tells it who the members are, and bookd's own
// identity lookup (rendezvous hashing with an owner check) that places each
// virtual actor on exactly one member.
//
// The edge reaches actors only through Node.Request.
package cluster
