package cluster

import (
	"github.com/asynkron/protoactor-go/cluster"
)

// SingleProvider is the cluster provider of a node that runs alone: the
// topology is this member and nothing else. The memberlist provider replaces
// it when nodes join each other.
type SingleProvider struct{}

var _ cluster.ClusterProvider = SingleProvider{}

// StartMember publishes the one-member topology.
func (SingleProvider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	c.MemberList.UpdateClusterTopology([]*cluster.Member{{
		Id:    c.ActorSystem.ID,
		Host:  host,
		Port:  int32(port),
		Kinds: c.GetClusterKinds(),
	}})
	return nil
}

// StartClient is not supported: a single node is always a member.
func (SingleProvider) StartClient(c *cluster.Cluster) error { return SingleProvider{}.StartMember(c) }

// Shutdown has nothing to release.
func (SingleProvider) Shutdown(bool) error { return nil }
