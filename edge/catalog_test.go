package edge

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

func TestParseListQuery(t *testing.T) {
	tests := []struct {
		query     string
		want      persistence.ListQuery
		wantField string
	}{
		{query: "", want: persistence.ListQuery{Limit: 20}},
		{query: "limit=2", want: persistence.ListQuery{Limit: 2}},
		{query: "limit=1", want: persistence.ListQuery{Limit: 1}},
		{query: "limit=100", want: persistence.ListQuery{Limit: 100}},
		{query: "limit=", want: persistence.ListQuery{Limit: 20}},
		{query: "city=Lisbon&kind=restaurant", want: persistence.ListQuery{Limit: 20, City: "Lisbon", Kind: persistence.KindRestaurant}},
		{query: "city=S%C3%A3o+Paulo", want: persistence.ListQuery{Limit: 20, City: "São Paulo"}},
		{query: "cursor=" + encodeCursor("hotel-alfama") + "&limit=5", want: persistence.ListQuery{Limit: 5, After: "hotel-alfama"}},
		// The first value of a repeated parameter counts.
		{query: "limit=3&limit=500", want: persistence.ListQuery{Limit: 3}},

		{query: "limit=0", wantField: "limit"},
		{query: "limit=101", wantField: "limit"},
		{query: "limit=-1", wantField: "limit"},
		{query: "limit=two", wantField: "limit"},
		{query: "limit=1.5", wantField: "limit"},
		{query: "limit=99999999999999999999999", wantField: "limit"},
		{query: "cursor=nope", wantField: "cursor"},
		{query: "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("l1:")), wantField: "cursor"},
		{query: "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("l2:hotel")), wantField: "cursor"},
		{query: "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("l1:Hotel")), wantField: "cursor"},
		{query: "cursor=" + base64.StdEncoding.EncodeToString([]byte("l1:hotel")), wantField: "cursor"},
		{query: "kind=castle", wantField: "kind"},
		{query: "city=" + strings.Repeat("x", 201), wantField: "city"},
		{query: "sort=name", wantField: "sort"},
		{query: "Limit=2", wantField: "Limit"},
		{query: "=x", wantField: "query"},
		{query: "=", wantField: "query"},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatalf("bad test query %q: %v", tt.query, err)
		}
		got, p := parseListQuery(q)
		if tt.wantField != "" {
			if f := problemField(p); p == nil || f != tt.wantField || p.Status != 400 {
				t.Errorf("parseListQuery(%q) = %+v, %v, want a 400 naming %q", tt.query, got, describe(p), tt.wantField)
			}
			continue
		}
		if p != nil {
			t.Errorf("parseListQuery(%q) = %v, want success", tt.query, describe(p))
			continue
		}
		if got != tt.want {
			t.Errorf("parseListQuery(%q) = %+v, want %+v", tt.query, got, tt.want)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []string{"a", "0", "hotel-alfama", "bus-berlin-hamburg", "lst-abcdefghijklmnop", strings.Repeat("z", 64)} {
		c := encodeCursor(id)
		if strings.ContainsAny(c, "+/=") {
			t.Errorf("encodeCursor(%q) = %q, want URL-safe characters only", id, c)
		}
		got, err := decodeCursor(c)
		if err != nil || got != id {
			t.Errorf("decodeCursor(encodeCursor(%q)) = %q, %v, want %q", id, got, err, id)
		}
		if url.QueryEscape(c) != c {
			t.Errorf("encodeCursor(%q) = %q needs escaping in a query", id, c)
		}
	}
	for _, c := range []string{"", "!", "bDE6", base64.RawURLEncoding.EncodeToString([]byte("l1:a b")), base64.RawURLEncoding.EncodeToString([]byte("l1:" + strings.Repeat("z", 65)))} {
		if got, err := decodeCursor(c); err == nil {
			t.Errorf("decodeCursor(%q) = %q, want an error", c, got)
		}
	}
}

func TestResourceJSON(t *testing.T) {
	got := resourceJSON(persistence.Resource{ID: "t1", ListingID: "l", Name: "Table 1", Unit: persistence.SlotMinutes, SlotMinutes: 30, Capacity: 4, HoldTTL: 90 * time.Second})
	want := ResourceJSON{ID: "t1", ListingID: "l", Name: "Table 1", Slot: SlotJSON{Unit: "minutes", Minutes: 30}, Capacity: 4, HoldTTLSeconds: 90}
	if got != want {
		t.Errorf("resourceJSON = %+v, want %+v", got, want)
	}
	if l := listingJSON(persistence.Listing{ID: "l"}); l.Attributes == nil {
		t.Errorf("listingJSON(no attributes).Attributes = nil, want an empty map (JSON {})")
	}
}
