package edge

import (
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true},
		{"0", true},
		{"9-lives", true},
		{"hotel-alfama-room-101", true},
		{"a-", true},
		{"a--b", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"-a", false},
		{"A", false},
		{"room_1", false},
		{"room.1", false},
		{"room 1", false},
		{"room/1", false},
		{"é", false},
		{"a\x00", false},
		{"a\n", false},
	}
	for _, tt := range tests {
		if got := validID(tt.id); got != tt.want {
			t.Errorf("validID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newID("res")
		if !validID(id) || !strings.HasPrefix(id, "res-") || len(id) != len("res-")+generatedIDLen {
			t.Fatalf("newID(res) = %q, want res- and %d id characters", id, generatedIDLen)
		}
		if seen[id] {
			t.Fatalf("newID(res) = %q twice", id)
		}
		seen[id] = true
	}
}

func TestHoldIDRoundTrip(t *testing.T) {
	for _, res := range []string{"a", "concert-standing", "hotel-alfama-room-101", strings.Repeat("z", 64)} {
		for _, key := range []string{"", "k", "order-42", strings.Repeat("~", 255)} {
			id := newHoldID(res, "", key)
			got, ok := parseHoldID(id)
			if !ok || got != res {
				t.Errorf("parseHoldID(newHoldID(%q, \"\", %q) = %q) = %q, %v, want %q, true", res, key, id, got, ok, res)
			}
		}
	}
}

func TestNewHoldIDIdempotencyKey(t *testing.T) {
	a1 := newHoldID("concert-standing", "", "order-42")
	a2 := newHoldID("concert-standing", "", "order-42")
	if a1 != a2 {
		t.Errorf("newHoldID(concert-standing, \"\", order-42) = %q then %q, want the same id", a1, a2)
	}
	// The ids of holds already in journals: a retry after an upgrade must
	// name the same hold.
	for _, c := range []struct{ res, key, want string }{
		{"concert-standing", "order-42", "concert-standing.kkyi2v523gxgwvaydrf3"},
		{"hotel-alfama-room-101", "k", "hotel-alfama-room-101.5ns7iarnnjn4y5oth4p6"},
	} {
		if got := newHoldID(c.res, "", c.key); got != c.want {
			t.Errorf("newHoldID(%q, \"\", %q) = %q, want %q as every release before", c.res, c.key, got, c.want)
		}
	}
	// A user's key: the id the handler made before it passed the user on
	// its own (it joined user, NUL and key), taken at 16b804b.
	if got, want := newHoldID("concert-standing", "usr-1", "order-42"), "concert-standing.wnpcojwaquykutjfs6fr"; got != want {
		t.Errorf("newHoldID(concert-standing, usr-1, order-42) = %q, want %q as every release before", got, want)
	}
	if a, b := newHoldID("concert-standing", "usr-1", "order-42"), newHoldID("concert-standing", "usr-2", "order-42"); a == b {
		t.Errorf("newHoldID(concert-standing, usr-1 and usr-2, order-42) = %q for both, want two ids", a)
	}
	distinct := map[string]string{a1: "concert-standing/order-42"}
	for _, c := range []struct{ res, key string }{
		{"concert-standing", "order-43"},
		{"concert-standing", "Order-42"},
		{"concert-standing", "order-420"},
		{"hotel-alfama-standard", "order-42"},
		// The resource and the key are kept apart: moving a character across
		// the boundary makes a different hold.
		{"concert-standin", "gorder-42"},
	} {
		id := newHoldID(c.res, "", c.key)
		if prev, dup := distinct[id]; dup {
			t.Errorf("newHoldID(%q, \"\", %q) = %q, the same as for %s", c.res, c.key, id, prev)
		}
		distinct[id] = c.res + "/" + c.key
	}
	// Without a key every hold is new.
	seen := map[string]bool{}
	for range 100 {
		id := newHoldID("concert-standing", "", "")
		if seen[id] {
			t.Fatalf("newHoldID(concert-standing, \"\", \"\") = %q twice", id)
		}
		seen[id] = true
	}
}

func TestParseHoldID(t *testing.T) {
	token := strings.Repeat("a", holdTokenLen)
	tests := []struct {
		id      string
		wantRes string
		wantOK  bool
	}{
		{"room-1." + token, "room-1", true},
		{"room-1.abcdefghijklmnopqrst", "room-1", true},
		{"r.234567abcdefghijklmn", "r", true},
		{"", "", false},
		{"room-1", "", false},
		{"room-1.", "", false},
		{"." + token, "", false},
		{"Room-1." + token, "", false},
		{"-room." + token, "", false},
		{"room-1." + token[:holdTokenLen-1], "", false},
		{"room-1." + token + "a", "", false},
		{"room-1.aaaaaaaaaaaaaaaaaaa1", "", false}, // 1 is not in the alphabet
		{"room-1.AAAAAAAAAAAAAAAAAAAA", "", false},
		{"room-1.aaaaaaaaaaaaaaaaaaa=", "", false},
		{"room.1." + token, "", false}, // the resource part has a dot
		{strings.Repeat("a", 65) + "." + token, "", false},
		{"room-1.aaaaaaaaaaaaaaaaaaé", "", false},
	}
	for _, tt := range tests {
		res, ok := parseHoldID(tt.id)
		if res != tt.wantRes || ok != tt.wantOK {
			t.Errorf("parseHoldID(%q) = %q, %v, want %q, %v", tt.id, res, ok, tt.wantRes, tt.wantOK)
		}
	}
}

func TestValidIdempotencyKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"a", true},
		{"0b0e6f0c-6d5a-4a43-9c68-2a8f3c2f8e11", true},
		{"!~\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", true},
		{strings.Repeat("k", 255), true},
		{"", false},
		{strings.Repeat("k", 256), false},
		{"has space", false},
		{"tab\there", false},
		{"new\nline", false},
		{"del\x7f", false},
		{"nul\x00", false},
		{"ünïcode", false},
	}
	for _, tt := range tests {
		if got := validIdempotencyKey(tt.key); got != tt.want {
			t.Errorf("validIdempotencyKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}
