package edge

import (
	"net/http"

	"github.com/bookd/bookd/cluster"
)

// ClusterViewer is what GET /v1/cluster shows: the node's view of the
// cluster. The cluster node implements it next to Actors.
type ClusterViewer interface {
	Status() cluster.Status
}

// handleCluster is GET /v1/cluster: the members this node knows, their
// gossip state, whether they take part in placement here, and how many
// resources each has active (this node's count is exact, the others' as
// they last gossiped it).
func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request) {
	v, ok := s.actors.(ClusterViewer)
	if !ok {
		writeProblem(w, r, newProblem(probNotFound, "this node has no cluster view"))
		return
	}
	st := v.Status()
	if st.Members == nil {
		st.Members = []cluster.MemberStatus{}
	}
	writeJSON(w, http.StatusOK, st)
}
