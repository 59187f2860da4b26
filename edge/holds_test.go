package edge

import (
	"strings"
	"testing"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
)

func TestDecodeHoldRequest(t *testing.T) {
	tests := []struct {
		body string
		// want is the request on success (wantField == "").
		want      HoldRequest
		wantQty   int64
		wantField string
	}{
		{body: `{"resource_id":"concert-standing"}`, want: HoldRequest{ResourceID: "concert-standing"}, wantQty: 1},
		{body: `{"resource_id":"concert-standing","quantity":null}`, want: HoldRequest{ResourceID: "concert-standing"}, wantQty: 1},
		{body: `{"resource_id":"concert-standing","quantity":1}`, want: HoldRequest{ResourceID: "concert-standing"}, wantQty: 1},
		{body: `{"resource_id":"hotel-alfama-standard","from":"2031-03-01","to":"2031-03-04","quantity":3}`,
			want: HoldRequest{ResourceID: "hotel-alfama-standard", From: "2031-03-01", To: "2031-03-04"}, wantQty: 3},
		{body: `{"resource_id":"r","quantity":1000000}`, want: HoldRequest{ResourceID: "r"}, wantQty: 1_000_000},
		{body: `{"resource_id":"0"}`, want: HoldRequest{ResourceID: "0"}, wantQty: 1},
		// The slot range is the resource's to check; the decoder only bounds it.
		{body: `{"resource_id":"r","from":"whatever","to":"x"}`, want: HoldRequest{ResourceID: "r", From: "whatever", To: "x"}, wantQty: 1},

		{body: `{"resource_id":"r","quantity":0}`, wantField: "quantity"},
		{body: `{"resource_id":"r","quantity":-1}`, wantField: "quantity"},
		{body: `{"resource_id":"r","quantity":-9223372036854775808}`, wantField: "quantity"},
		{body: `{"resource_id":"r","quantity":1000001}`, wantField: "quantity"},
		{body: `{"resource_id":"r","quantity":9223372036854775807}`, wantField: "quantity"},
		{body: `{"resource_id":"r","quantity":"2"}`, wantField: "quantity"},
		{body: `{"resource_id":"r","quantity":2.5}`, wantField: "quantity"},
		{body: `{"resource_id":"r","quantity":[1]}`, wantField: "quantity"},
		{body: `{}`, wantField: "resource_id"},
		{body: `null`, wantField: "resource_id"},
		{body: `{"resource_id":""}`, wantField: "resource_id"},
		{body: `{"resource_id":"Room-1"}`, wantField: "resource_id"},
		{body: `{"resource_id":"-room"}`, wantField: "resource_id"},
		{body: `{"resource_id":"room 1"}`, wantField: "resource_id"},
		{body: `{"resource_id":"room.1"}`, wantField: "resource_id"},
		{body: `{"resource_id":"room/1"}`, wantField: "resource_id"},
		{body: `{"resource_id":"r\u00e9"}`, wantField: "resource_id"},
		{body: `{"resource_id":"` + strings.Repeat("a", 65) + `"}`, wantField: "resource_id"},
		{body: `{"resource_id":7}`, wantField: "resource_id"},
		{body: `{"resource_id":"r","from":"` + strings.Repeat("1", 65) + `","to":"x"}`, wantField: "from"},
		{body: `{"resource_id":"r","from":"x","to":"` + strings.Repeat("1", 65) + `"}`, wantField: "to"},
		{body: `{"resource_id":"r","from":1}`, wantField: "from"},
		{body: `{"resource_id":"r","until":"2031-01-01"}`, wantField: "until"},
		{body: `{"resource_id":"r"`, wantField: "body"},
		{body: ``, wantField: "body"},
		{body: `{"resource_id":"r"} {"resource_id":"s"}`, wantField: "body"},
	}
	for _, tt := range tests {
		got, p := decodeHoldRequest([]byte(tt.body))
		if tt.wantField != "" {
			if p == nil {
				t.Errorf("decodeHoldRequest(%q) = %+v, want a problem naming %q", tt.body, got, tt.wantField)
				continue
			}
			if f := problemField(p); f != tt.wantField || p.Status != 400 || p.Type != "/problems/invalid-request" {
				t.Errorf("decodeHoldRequest(%q) = %d %s, want 400 invalid-request naming %q", tt.body, p.Status, describe(p), tt.wantField)
			}
			continue
		}
		if p != nil {
			t.Errorf("decodeHoldRequest(%q) = %v, want success", tt.body, describe(p))
			continue
		}
		if got.Quantity == nil || *got.Quantity != tt.wantQty {
			t.Errorf("decodeHoldRequest(%q) quantity = %v, want %d", tt.body, got.Quantity, tt.wantQty)
		}
		got.Quantity = nil
		if got != tt.want {
			t.Errorf("decodeHoldRequest(%q) = %+v, want %+v", tt.body, got, tt.want)
		}
	}
}

func TestHoldJSON(t *testing.T) {
	const at = int64(1_900_000_000_000) // 2030-03-17T17:46:40Z
	tests := []struct {
		status      bookdv1.HoldStatus
		wantStatus  string
		wantExpires bool
	}{
		{bookdv1.HoldStatus_HOLD_STATUS_HELD, "held", true},
		{bookdv1.HoldStatus_HOLD_STATUS_CONFIRMED, "confirmed", false},
		{bookdv1.HoldStatus_HOLD_STATUS_RELEASED, "released", false},
		{bookdv1.HoldStatus_HOLD_STATUS_CANCELLED, "cancelled", false},
		{bookdv1.HoldStatus_HOLD_STATUS_EXPIRED, "expired", true},
		{bookdv1.HoldStatus_HOLD_STATUS_UNSPECIFIED, "unknown", false},
	}
	for _, tt := range tests {
		h := &bookdv1.Hold{HoldId: "r.aaaaaaaaaaaaaaaaaaaa", ResourceId: "r", Status: tt.status, Quantity: 2,
			From: "2031-01-01", To: "2031-01-02", CreatedAtMs: at, ExpiresAtMs: at + 600_000, UpdatedAtMs: at + 1}
		got := holdJSON(h)
		want := HoldJSON{ID: "r.aaaaaaaaaaaaaaaaaaaa", ResourceID: "r", Status: tt.wantStatus, Quantity: 2,
			From: "2031-01-01", To: "2031-01-02", CreatedAt: "2030-03-17T17:46:40.000Z", UpdatedAt: "2030-03-17T17:46:40.001Z"}
		if tt.wantExpires {
			want.ExpiresAt = "2030-03-17T17:56:40.000Z"
		}
		if got != want {
			t.Errorf("holdJSON(%v) = %+v, want %+v", tt.status, got, want)
		}
	}
}
