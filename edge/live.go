package edge

import (
	"context"
)

// DrainLive refuses new WebSocket connections and closes the open ones
// with CloseGoingAway, spread over Live.DrainSpread so that clients do not
// reconnect all at once, and waits until they are gone or ctx ends.
// http.Server.Shutdown does not wait for them: they are hijacked.
func (s *Server) DrainLive(ctx context.Context) error {
	if s.hub == nil {
		return nil
	}
	return s.hub.drain(ctx)
}

// Close stops the hub's goroutines and bus subscriptions; call it after
// the HTTP server has stopped.
func (s *Server) Close() {
	if s.hub != nil {
		s.hub.close()
	}
}

// LiveStats returns the WebSocket hub's counters (zero without a bus).
func (s *Server) LiveStats() LiveStats {
	if s.hub == nil {
		return LiveStats{}
	}
	return s.hub.stats()
}
