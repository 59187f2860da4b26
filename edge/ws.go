package edge

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bookd/bookd/persistence"
)

// maxBadMessages is how many refused messages a connection may send
// before it is closed with ClosePolicy.
const maxBadMessages = 20

// writeBuffers is shared by every connection: a buffer is taken only
// while a message is written.
var writeBuffers sync.Pool

// wsConn is one WebSocket client: one reader goroutine (the handler's)
// and one writer goroutine.
type wsConn struct {
	h  *hub
	ws *websocket.Conn
	// send is the bounded queue of messages for the writer.
	send chan []byte
	// done is closed when the connection must end; code and text say how.
	done      chan struct{}
	closeOnce sync.Once
	code      int
	text      string

	// Reader goroutine only.
	userID string
	subs   map[string]*subscription // by client topic
	bad    int
}

// handleWS is GET /v1/ws: the live availability stream.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.hub == nil {
		p := newProblem(probUnavailable, "this node has no bus; live availability is off")
		p.retryAfter = 0 // retrying this node will not help
		writeProblem(w, r, p)
		return
	}
	if !s.checkOrigin(r) {
		writeProblem(w, r, newProblem(probForbidden, "origin %q may not open a WebSocket here", r.Header.Get("Origin")))
		return
	}
	up := websocket.Upgrader{
		ReadBufferSize: 1024, WriteBufferSize: 4096, WriteBufferPool: &writeBuffers,
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      func(*http.Request) bool { return true }, // checked above
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeProblem(w, r, newProblem(probInvalid, "not a WebSocket handshake: %v", reason))
		},
	}
	h := s.hub
	c := &wsConn{h: h, send: make(chan []byte, h.cfg.SendQueue), done: make(chan struct{}), subs: map[string]*subscription{}}
	if !h.addConn(c) {
		writeProblem(w, r, newProblem(probUnavailable, "the node is draining; connect to another"))
		return
	}
	defer h.removeConn(c)
	// guard has checked an Authorization header (non-browser clients);
	// an access token's user may have the user topic.
	if p := principal(r); p != nil && p.APIKey == "" {
		c.userID = p.UserID
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	c.ws = ws
	wrote := make(chan struct{})
	go func() { defer close(wrote); c.writeLoop() }()
	c.readLoop(s)
	c.kill(websocket.CloseNormalClosure, "")
	<-wrote
	for _, sub := range c.subs {
		h.unsubscribe(sub)
	}
}

// checkOrigin allows requests without Origin (not a browser), from the
// node's own host, and from Live.AllowedOrigins.
func (s *Server) checkOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range s.cfg.Live.AllowedOrigins {
		if a == "*" || strings.EqualFold(a, o) {
			return true
		}
	}
	return false
}

// enqueue queues msg for the writer; when the queue is full the client is
// too slow and is closed. It never blocks.
func (c *wsConn) enqueue(msg []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.send <- msg:
		return true
	default:
		c.h.slowClosed.Add(1)
		c.kill(CloseSlowConsumer, "too slow: the send queue overflowed; reconnect and resume")
		return false
	}
}

// kill makes the writer close the connection with code.
func (c *wsConn) kill(code int, text string) {
	c.closeOnce.Do(func() {
		c.code, c.text = code, text
		close(c.done)
	})
}

// writeLoop writes queued messages and pings; once done is closed it
// sends the close frame and closes the socket, which ends the reader.
func (c *wsConn) writeLoop() {
	cfg := c.h.cfg
	ping := time.NewTicker(cfg.PingEvery)
	defer ping.Stop()
	defer c.ws.Close()
	for {
		// A closed connection goes first, even with messages waiting.
		select {
		case <-c.done:
			c.writeClose()
			return
		default:
		}
		select {
		case <-c.done:
			c.writeClose()
			return
		case msg := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				c.kill(websocket.CloseAbnormalClosure, "")
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteWait)); err != nil {
				c.kill(websocket.CloseAbnormalClosure, "")
				return
			}
		}
	}
}

func (c *wsConn) writeClose() {
	if c.code == websocket.CloseAbnormalClosure {
		return
	}
	msg := websocket.FormatCloseMessage(c.code, c.text)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.h.cfg.WriteWait))
}

// readLoop reads client messages until the connection ends.
func (c *wsConn) readLoop(s *Server) {
	cfg := c.h.cfg
	c.ws.SetReadLimit(maxClientMessage)
	wait := 2 * cfg.PingEvery
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(wait)) })
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			if strings.Contains(err.Error(), "read limit exceeded") {
				c.kill(CloseTooBig, "message too big")
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(wait))
		if typ != websocket.TextMessage {
			c.refuse("", "bad-message", "send JSON in text frames")
			continue
		}
		m, t, err := decodeClientMessage(data)
		if err != nil {
			c.refuse(m.Topic, "bad-message", err.Error())
			continue
		}
		c.handle(s, m, t)
		select {
		case <-c.done:
			return
		default:
		}
	}
}

// refuse answers a refused message; too many close the connection.
func (c *wsConn) refuse(topic, code, detail string) {
	c.bad++
	if c.bad > maxBadMessages {
		c.kill(ClosePolicy, "too many refused messages")
		return
	}
	c.enqueue(mustJSON(errorMsg{Type: "error", Topic: truncate(topic, maxTopicLen), Code: code, Detail: detail}))
}

// handle carries out one decoded client message.
func (c *wsConn) handle(s *Server, m clientMessage, t clientTopic) {
	switch m.Type {
	case msgAuth:
		p, prob := s.verifyAccessToken(c.h.ctx, m.Token)
		if prob != nil {
			c.refuse("", "forbidden", "the token is not valid")
			return
		}
		c.userID = p.UserID
		c.enqueue(mustJSON(authenticatedMsg{Type: "authenticated", UserID: p.UserID}))
	case msgUnsubscribe:
		name := t.String()
		if sub := c.subs[name]; sub != nil {
			delete(c.subs, name)
			c.h.unsubscribe(sub)
		}
		c.enqueue(mustJSON(unsubscribedMsg{Type: "unsubscribed", Topic: name}))
	case msgSubscribe:
		c.subscribe(m, t)
	}
}

func (c *wsConn) subscribe(m clientMessage, t clientTopic) {
	name := t.String()
	if t.kind == topicUser && c.userID == "" {
		c.refuse(name, "forbidden", "the user topic needs a token: send {\"type\":\"auth\",\"token\":…} first")
		return
	}
	busTopic := name
	if t.kind == topicUser {
		busTopic = persistence.UserTopic(c.userID) // the connection's own holds
	}
	if old := c.subs[name]; old != nil {
		delete(c.subs, name) // a subscribe again starts afresh
		c.h.unsubscribe(old)
	}
	if len(c.subs) >= c.h.cfg.MaxTopics {
		c.refuse(name, "too-many-topics", "unsubscribe from a topic first")
		return
	}
	ctx, cancel := context.WithTimeout(c.h.ctx, c.h.timeout)
	defer cancel()
	ht, err := c.h.acquire(ctx, busTopic, t)
	if err != nil {
		c.enqueue(mustJSON(errorMsg{Type: "error", Topic: name, Code: "unavailable", Detail: "the bus does not answer: " + err.Error()}))
		return
	}
	sub := &subscription{c: c, t: ht, from: m.From, to: m.To}
	c.subs[name] = sub
	c.h.subscribe(sub, m.Since)
}

// dropSub ends a subscription the hub could not serve. It may run on any
// goroutine: the reader's map is left alone, the subscription is only
// closed, and a later subscribe of the topic replaces it.
func (c *wsConn) dropSub(s *subscription) { c.h.unsubscribe(s) }
