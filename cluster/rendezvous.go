package cluster

import (
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/cespare/xxhash/v2"
)

// owner picks the member that owns key by rendezvous (highest random weight)
// hashing: every member scores xxhash(member id, key) and the highest score
// wins. Member ids are random per process start, so the spread is even
// whatever the members' addresses look like, and a membership change moves
// only the keys of the members that came or went.
//
// members must host kind; owner returns nil when none does.
func owner(members []*cluster.Member, kind, key string) *cluster.Member {
	var best *cluster.Member
	var bestScore uint64
	for _, m := range members {
		if !hosts(m, kind) {
			continue
		}
		if s := score(m.Id, key); best == nil || s > bestScore || (s == bestScore && m.Id < best.Id) {
			best, bestScore = m, s
		}
	}
	return best
}

func score(memberID, key string) uint64 {
	d := xxhash.New()
	_, _ = d.WriteString(memberID)
	_, _ = d.Write([]byte{0})
	_, _ = d.WriteString(key)
	return d.Sum64()
}

func hosts(m *cluster.Member, kind string) bool {
	for _, k := range m.Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// OwnerOf returns which of memberIDs owns identity of kind, by the same
// rendezvous hashing that places activations when every member hosts kind;
// "" when memberIDs is empty. Tools and tests use it to predict placement.
func OwnerOf(memberIDs []string, kind, identity string) string {
	members := make([]*cluster.Member, len(memberIDs))
	for i, id := range memberIDs {
		members[i] = &cluster.Member{Id: id, Kinds: []string{kind}}
	}
	if m := owner(members, kind, cluster.NewClusterIdentity(identity, kind).AsKey()); m != nil {
		return m.Id
	}
	return ""
}
