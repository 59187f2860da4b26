package edge

import (
	"strings"
	"testing"
)

func TestDecodeClientMessage(t *testing.T) {
	tests := []struct {
		msg     string
		want    string // the topic as the hub names it; "" for auth
		wantErr string // a part of the error; "" for success
	}{
		{msg: `{"type":"subscribe","topic":"resource:room-1"}`, want: "resource:room-1"},
		{msg: `{"type":"subscribe","topic":"listing:hotel-alfama","from":"2031-01-01","to":"2031-01-08"}`, want: "listing:hotel-alfama"},
		{msg: `{"type":"subscribe","topic":"listing:l","since":{"r1":{"epoch":"18446744073709551615","seq":4}}}`, want: "listing:l"},
		{msg: `{"type":"unsubscribe","topic":"user"}`, want: "user"},
		{msg: `{"type":"auth","token":"abc"}`},

		{msg: `{"type":"subscribe","topic":"room-1"}`, wantErr: "topic"},
		{msg: `{"type":"subscribe","topic":"resource:Room 1"}`, wantErr: "topic"},
		{msg: `{"type":"subscribe","topic":"booking:b1"}`, wantErr: "topic"},
		{msg: `{"type":"subscribe"}`, wantErr: "topic"},
		{msg: `{"type":"publish","topic":"resource:r"}`, wantErr: "type"},
		{msg: `{"type":"subscribe","topic":"resource:r","extra":1}`, wantErr: "unknown field"},
		{msg: `{"type":"subscribe","topic":"resource:r","since":{"r":{"epoch":"-1","seq":1}}}`, wantErr: "epoch"},
		{msg: `{"type":"subscribe","topic":"resource:r","since":{"r":{"epoch":1,"seq":1}}}`, wantErr: "not a message"},
		{msg: `{"type":"subscribe","topic":"resource:r","since":{"R R":{"epoch":"1","seq":1}}}`, wantErr: "resource id"},
		{msg: `{"type":"subscribe","topic":"resource:r","from":"` + strings.Repeat("1", 65) + `"}`, wantErr: "from"},
		{msg: `{"type":"auth"}`, wantErr: "token"},
		{msg: `{"type":"subscribe","topic":"resource:r"} {}`, wantErr: "after the object"},
		{msg: `[]`, wantErr: "not a message"},
		{msg: ``, wantErr: "not a message"},
		{msg: `{"type":"auth","token":"` + strings.Repeat("a", maxClientMessage) + `"}`, wantErr: "larger than"},
	}
	for _, tt := range tests {
		_, topic, err := decodeClientMessage([]byte(tt.msg))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decodeClientMessage(%.60q) = %v, want an error about %q", tt.msg, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("decodeClientMessage(%.60q) = %v, want success", tt.msg, err)
			continue
		}
		if tt.want != "" && topic.String() != tt.want {
			t.Errorf("decodeClientMessage(%.60q) topic = %q, want %q", tt.msg, topic, tt.want)
		}
	}
}

// FuzzDecodeClientMessage: no input panics, and a message that decodes has
// a topic that parses back to itself and bounded fields.
func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"subscribe","topic":"resource:room-1"}`,
		`{"type":"subscribe","topic":"listing:l","since":{"r1":{"epoch":"7","seq":4}},"from":"2031-01-01","to":"2031-01-02"}`,
		`{"type":"unsubscribe","topic":"user"}`,
		`{"type":"auth","token":"t"}`,
		`{"type":"subscribe","topic":"resource:"}`,
		`{}`, `null`, `{"since":{"":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, topic, err := decodeClientMessage(data)
		if err != nil {
			return
		}
		switch m.Type {
		case msgAuth:
			if m.Token == "" || len(m.Token) > maxTokenLen {
				t.Fatalf("accepted token of %d bytes", len(m.Token))
			}
		case msgSubscribe, msgUnsubscribe:
			back, err := parseTopic(topic.String())
			if err != nil || back != topic {
				t.Fatalf("topic %v does not parse back: %v, %v", topic, back, err)
			}
			if len(m.Since) > maxSince || len(m.From) > 64 || len(m.To) > 64 {
				t.Fatalf("accepted unbounded fields: %d positions", len(m.Since))
			}
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
	})
}
