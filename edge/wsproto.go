package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/bookd/bookd/persistence"
)

// The WebSocket protocol of GET /v1/ws; README.md ("Live availability")
// documents it for clients. Every message is one JSON object in a text
// frame with a "type".

// Close codes the server ends a connection with.
const (
	// CloseGoingAway (1001): the node is draining; reconnect (to any node)
	// after a short random pause and resume every topic.
	CloseGoingAway = 1001
	// ClosePolicy (1008): the client broke the protocol (too many bad
	// messages, too many topics).
	ClosePolicy = 1008
	// CloseTooBig (1009): a client message exceeded the read limit.
	CloseTooBig = 1009
	// CloseSlowConsumer (4008): the client fell so far behind that its
	// send queue overflowed; reconnect and resume with the last positions.
	CloseSlowConsumer = 4008
)

// Client message types.
const (
	msgSubscribe   = "subscribe"
	msgUnsubscribe = "unsubscribe"
	msgAuth        = "auth"
)

// Limits on what a client may send.
const (
	maxClientMessage = 8 << 10 // bytes; the read limit
	maxTopicLen      = 80
	maxSince         = 1000 // positions in one subscribe
	maxTokenLen      = 4096
)

// Position is where a client is in one resource's history.
type Position struct {
	// Epoch is a decimal string: it is a 64-bit number, more than a
	// JavaScript number holds exactly.
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// clientMessage is any message a client sends.
type clientMessage struct {
	Type  string `json:"type"`
	Topic string `json:"topic,omitempty"`
	// From and To bound the slots of snapshots (as GET availability takes
	// them); both empty: the resource's default window.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Since resumes: the last position seen per resource id.
	Since map[string]Position `json:"since,omitempty"`
	// Token is an access token (type "auth").
	Token string `json:"token,omitempty"`
}

// topicKind is what a client topic names.
type topicKind int

const (
	topicResource topicKind = iota + 1
	topicListing
	topicUser
)

// clientTopic is a topic as a client names it, parsed.
type clientTopic struct {
	kind topicKind
	id   string // resource or listing id; "" for user
}

// String is t as clients name it: for resources and listings that is
// also its bus topic.
func (t clientTopic) String() string {
	switch t.kind {
	case topicResource:
		return persistence.ResourceTopic(t.id)
	case topicListing:
		return persistence.ListingTopic(t.id)
	}
	return "user"
}

// parseTopic reads "resource:<id>", "listing:<id>" or "user".
func parseTopic(s string) (clientTopic, error) {
	if s == "user" {
		return clientTopic{kind: topicUser}, nil
	}
	kind, id, ok := strings.Cut(s, ":")
	if !ok || !validID(id) {
		return clientTopic{}, fmt.Errorf("topic %q is not resource:<id>, listing:<id> or user", truncate(s, maxTopicLen))
	}
	switch kind {
	case "resource":
		return clientTopic{kind: topicResource, id: id}, nil
	case "listing":
		return clientTopic{kind: topicListing, id: id}, nil
	}
	return clientTopic{}, fmt.Errorf("topic %q is not resource:<id>, listing:<id> or user", truncate(s, maxTopicLen))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// decodeClientMessage parses and checks one client message: strict JSON
// (unknown fields are errors), a known type, a valid topic where one is
// needed, bounded sizes. The error is the detail of the error message
// the client gets.
func decodeClientMessage(data []byte) (clientMessage, clientTopic, error) {
	var m clientMessage
	if len(data) > maxClientMessage {
		return m, clientTopic{}, fmt.Errorf("message is larger than %d bytes", maxClientMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return clientMessage{}, clientTopic{}, fmt.Errorf("not a message: %v", err)
	}
	if dec.More() {
		return clientMessage{}, clientTopic{}, fmt.Errorf("not a message: data after the object")
	}
	var t clientTopic
	switch m.Type {
	case msgAuth:
		if m.Token == "" || len(m.Token) > maxTokenLen {
			return m, t, fmt.Errorf("token: want 1 to %d characters", maxTokenLen)
		}
		return m, t, nil
	case msgSubscribe, msgUnsubscribe:
	default:
		return m, t, fmt.Errorf("type %q: want subscribe, unsubscribe or auth", truncate(m.Type, 20))
	}
	var err error
	if t, err = parseTopic(m.Topic); err != nil {
		return m, t, err
	}
	if len(m.From) > 64 || len(m.To) > 64 {
		return m, t, fmt.Errorf("from and to: at most 64 characters")
	}
	if len(m.Since) > maxSince {
		return m, t, fmt.Errorf("since: at most %d positions", maxSince)
	}
	for id, p := range m.Since {
		if !validID(id) {
			return m, t, fmt.Errorf("since: %q is not a resource id", truncate(id, maxTopicLen))
		}
		if _, err := strconv.ParseUint(p.Epoch, 10, 64); err != nil {
			return m, t, fmt.Errorf("since[%s].epoch: want a decimal 64-bit number", id)
		}
	}
	return m, t, nil
}

// Server messages.

// slotJSON is one slot's counts.
type slotJSON struct {
	Start     string `json:"start"`
	Free      uint32 `json:"free"`
	Held      uint32 `json:"held"`
	Confirmed uint32 `json:"confirmed"`
}

// resourceSnapshot is one resource's state in a snapshot message.
type resourceSnapshot struct {
	ResourceID string     `json:"resource_id"`
	Capacity   uint32     `json:"capacity"`
	Epoch      string     `json:"epoch"`
	Seq        uint64     `json:"seq"`
	Slots      []slotJSON `json:"slots"`
}

// snapshotMsg replaces the client's state of the resources it lists (all
// of the topic's resources at subscribe and after a Lost; one after a gap).
type snapshotMsg struct {
	Type      string             `json:"type"` // "snapshot"
	Topic     string             `json:"topic"`
	Resources []resourceSnapshot `json:"resources"`
	// Reset (user topic) means events may have been missed: re-read the
	// holds over REST.
	Reset bool `json:"reset,omitempty"`
}

// deltaMsg is one committed batch of a resource: apply it when the client
// is at (epoch, prev_seq).
type deltaMsg struct {
	Type       string     `json:"type"` // "delta"
	Topic      string     `json:"topic"`
	ResourceID string     `json:"resource_id"`
	ListingID  string     `json:"listing_id,omitempty"`
	Epoch      string     `json:"epoch"`
	PrevSeq    uint64     `json:"prev_seq"`
	Seq        uint64     `json:"seq"`
	Capacity   uint32     `json:"capacity"`
	Slots      []slotJSON `json:"slots,omitempty"`
	Holds      []HoldJSON `json:"holds,omitempty"`
	// CommittedAt is when the batch committed (RFC 3339, microseconds).
	CommittedAt string `json:"committed_at"`
}

// resumedMsg answers a subscribe whose positions the node could resume
// from: the missed deltas follow.
type resumedMsg struct {
	Type  string `json:"type"` // "resumed"
	Topic string `json:"topic"`
}

// unsubscribedMsg confirms an unsubscribe.
type unsubscribedMsg struct {
	Type  string `json:"type"` // "unsubscribed"
	Topic string `json:"topic"`
}

// errorMsg reports a refused client message; the connection stays open.
type errorMsg struct {
	Type   string `json:"type"` // "error"
	Topic  string `json:"topic,omitempty"`
	Code   string `json:"code"` // bad-message, forbidden, not-found, unavailable, too-many-topics
	Detail string `json:"detail"`
}

// authenticatedMsg confirms an auth message.
type authenticatedMsg struct {
	Type   string `json:"type"` // "authenticated"
	UserID string `json:"user_id"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("edge: marshal %T: %v", v, err)) // only our own types
	}
	return b
}
