// Package edge is bookd's HTTP API: it turns requests into actor messages and
// catalog reads, and every error into an RFC 9457 problem with a stable type.
//
// The edge talks to actors only through the Actors interface (the cluster
// node) and the messages package; it never touches actor state.
package edge
