package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Watch is `bookd watch <topic>`: it prints a topic's live availability
// (GET /v1/ws) as it changes, and reconnects and resumes when the
// connection ends.
type Watch struct {
	Stdout, Stderr io.Writer

	Target string
	From   string
	To     string
	Token  string
	JSON   bool
}

// Run runs `bookd watch`.
func (w *Watch) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(w.Stderr)
	fs.StringVar(&w.Target, "target", "http://127.0.0.1:3000", "base URL of any node's API")
	fs.StringVar(&w.From, "from", "", "first slot of the window (as GET availability takes it); default: the resource's")
	fs.StringVar(&w.To, "to", "", "end of the window (exclusive)")
	fs.StringVar(&w.Token, "token", "", "access token, for the user topic")
	fs.BoolVar(&w.JSON, "json", false, "print the protocol's messages as they come")
	fs.Usage = func() {
		fmt.Fprintln(w.Stderr, "Usage: bookd watch [flags] <topic>\n\nTopics: resource:<id>, listing:<id>, user (needs --token).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return flag.ErrHelp
	}
	topic := fs.Arg(0)
	wsURL, err := liveURL(w.Target)
	if err != nil {
		return fmt.Errorf("--target: %w", err)
	}
	view := newLiveView()
	for attempt := 0; ; attempt++ {
		err := w.session(ctx, wsURL, topic, view)
		if ctx.Err() != nil {
			return nil
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation {
			return fmt.Errorf("watch: %w", err)
		}
		if attempt > 0 && view.empty() {
			return fmt.Errorf("watch: %w", err)
		}
		pause := time.Duration(float64(min(attempt+1, 8)*250) * (0.5 + rand.Float64()) * float64(time.Millisecond))
		fmt.Fprintf(w.Stderr, "watch: %v; resuming in %v\n", err, pause.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}

// session runs one connection until it ends.
func (w *Watch) session(ctx context.Context, wsURL, topic string, view *liveView) error {
	h := http.Header{}
	if w.Token != "" {
		h.Set("Authorization", "Bearer "+w.Token)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, resp, err := websocket.DefaultDialer.DialContext(dctx, wsURL, h)
	cancel()
	if err != nil {
		if resp != nil {
			return fmt.Errorf("%s: %s", wsURL, resp.Status)
		}
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.WriteJSON(view.subscribeMsg(topic, w.From, w.To)); err != nil {
		return err
	}
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		if w.JSON {
			fmt.Fprintf(w.Stdout, "%s\n", data)
		}
		var m liveMsg
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("undecodable message: %w", err)
		}
		if err := view.apply(m); err != nil {
			fmt.Fprintf(w.Stderr, "watch: %v; subscribing afresh\n", err)
			if err := conn.WriteJSON(view.subscribeMsg(topic, w.From, w.To)); err != nil {
				return err
			}
			continue
		}
		if !w.JSON {
			printLive(w.Stdout, m)
		}
		if m.Type == "error" && m.Code == "forbidden" {
			return fmt.Errorf("%s: %s", m.Code, m.Detail)
		}
	}
}

// liveURL turns an API base URL into the WebSocket URL.
func liveURL(target string) (string, error) {
	u, err := url.Parse(strings.TrimRight(target, "/"))
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("want an http:// or https:// URL, got %q", target)
	}
	u.Path += "/v1/ws"
	return u.String(), nil
}

// liveMsg is any server message of GET /v1/ws.
type liveMsg struct {
	Type       string             `json:"type"`
	Topic      string             `json:"topic"`
	Resources  []liveSnapResource `json:"resources"`
	Reset      bool               `json:"reset"`
	ResourceID string             `json:"resource_id"`
	Epoch      string             `json:"epoch"`
	PrevSeq    uint64             `json:"prev_seq"`
	Seq        uint64             `json:"seq"`
	Capacity   uint32             `json:"capacity"`
	Slots      []liveSlot         `json:"slots"`
	Holds      []json.RawMessage  `json:"holds"`
	Code       string             `json:"code"`
	Detail     string             `json:"detail"`
}

type liveSnapResource struct {
	ResourceID string     `json:"resource_id"`
	Capacity   uint32     `json:"capacity"`
	Epoch      string     `json:"epoch"`
	Seq        uint64     `json:"seq"`
	Slots      []liveSlot `json:"slots"`
}

type liveSlot struct {
	Start     string `json:"start"`
	Free      uint32 `json:"free"`
	Held      uint32 `json:"held"`
	Confirmed uint32 `json:"confirmed"`
}

// liveView is a client's state of one topic: what snapshots and deltas
// say, and where each resource is.
type liveView struct {
	resources map[string]*liveResource
	// deltas counts the deltas applied.
	deltas int
}

type liveResource struct {
	Capacity uint32
	Epoch    string
	Seq      uint64
	Slots    map[string]liveSlot
}

func newLiveView() *liveView { return &liveView{resources: map[string]*liveResource{}} }

func (v *liveView) empty() bool { return len(v.resources) == 0 }

// subscribeMsg subscribes to topic, resuming from the view's positions.
func (v *liveView) subscribeMsg(topic, from, to string) map[string]any {
	m := map[string]any{"type": "subscribe", "topic": topic}
	if from != "" || to != "" {
		m["from"], m["to"] = from, to
	}
	if len(v.resources) > 0 {
		since := map[string]any{}
		for id, r := range v.resources {
			since[id] = map[string]any{"epoch": r.Epoch, "seq": r.Seq}
		}
		m["since"] = since
	}
	return m
}

// apply changes the view by one message; a delta that does not follow the
// resource's position is an error (the client must subscribe afresh).
func (v *liveView) apply(m liveMsg) error {
	switch m.Type {
	case "snapshot":
		for _, r := range m.Resources {
			lr := &liveResource{Capacity: r.Capacity, Epoch: r.Epoch, Seq: r.Seq, Slots: map[string]liveSlot{}}
			for _, s := range r.Slots {
				lr.Slots[s.Start] = s
			}
			v.resources[r.ResourceID] = lr
		}
	case "delta":
		if m.Topic == "user" {
			v.deltas++
			return nil
		}
		r := v.resources[m.ResourceID]
		if r == nil || r.Epoch != m.Epoch || r.Seq != m.PrevSeq {
			at := "nothing"
			if r != nil {
				at = fmt.Sprintf("epoch %s seq %d", r.Epoch, r.Seq)
			}
			return fmt.Errorf("delta %s epoch %s %d..%d does not follow %s", m.ResourceID, m.Epoch, m.PrevSeq, m.Seq, at)
		}
		r.Seq = m.Seq
		for _, s := range m.Slots {
			if _, ok := r.Slots[s.Start]; ok {
				r.Slots[s.Start] = s
			}
		}
		v.deltas++
	}
	return nil
}

// printLive prints one message for a person.
func printLive(w io.Writer, m liveMsg) {
	ts := time.Now().Format("15:04:05.000")
	switch m.Type {
	case "snapshot":
		if m.Reset {
			fmt.Fprintf(w, "%s %s: subscribed (events may have been missed: re-read your holds)\n", ts, m.Topic)
		}
		for _, r := range m.Resources {
			fmt.Fprintf(w, "%s snapshot %s (capacity %d, epoch %s, seq %d): %s\n", ts, r.ResourceID, r.Capacity, r.Epoch, r.Seq, slotSummary(r.Slots))
		}
	case "delta":
		if len(m.Holds) > 0 {
			fmt.Fprintf(w, "%s %s seq %d: %s\n", ts, m.ResourceID, m.Seq, m.Holds)
			return
		}
		fmt.Fprintf(w, "%s %s seq %d..%d: %s\n", ts, m.ResourceID, m.PrevSeq+1, m.Seq, slotSummary(m.Slots))
	case "resumed":
		fmt.Fprintf(w, "%s %s: resumed\n", ts, m.Topic)
	case "error":
		fmt.Fprintf(w, "%s error %s: %s\n", ts, m.Code, m.Detail)
	}
}

func slotSummary(slots []liveSlot) string {
	sort.Slice(slots, func(i, j int) bool { return slots[i].Start < slots[j].Start })
	parts := make([]string, 0, len(slots))
	for _, s := range slots {
		name := s.Start
		if name == "" {
			name = "slot"
		}
		parts = append(parts, fmt.Sprintf("%s %d free %d held %d confirmed", name, s.Free, s.Held, s.Confirmed))
	}
	if len(parts) > 8 {
		return strings.Join(parts[:8], "; ") + fmt.Sprintf("; … %d more", len(parts)-8)
	}
	return strings.Join(parts, "; ")
}
