package edge

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bookd/bookd/persistence"
)

// Fuzz targets for every decoder of outside input. Each checks that the
// decoder never panics, that what it accepts is valid, and that what it
// refuses is a 4xx problem of a known type that names the field at fault.
//
//	go test ./edge -run '^$' -fuzz '^FuzzDecodeHoldRequest$' -fuzztime 20s

// checkRefusal fails t unless p is a well-formed client-error problem that
// names a field.
func checkRefusal(t *testing.T, what string, p *Problem) {
	t.Helper()
	if p.Status < 400 || p.Status > 499 {
		t.Fatalf("%s: status %d, want 4xx (%s)", what, p.Status, describe(p))
	}
	k, ok := problemsBySlug[strings.TrimPrefix(p.Type, "/problems/")]
	if !strings.HasPrefix(p.Type, "/problems/") || !ok {
		t.Fatalf("%s: type %q is not in the problem catalog", what, p.Type)
	}
	if p.Title != k.title || p.Status != k.status {
		t.Fatalf("%s: %q %d does not match the catalog's %q %d", what, p.Title, p.Status, k.title, k.status)
	}
	if len(p.Errors) == 0 || p.Errors[0].Field == "" || p.Errors[0].Detail == "" {
		t.Fatalf("%s: problem names no field: %+v", what, p)
	}
	if _, err := json.Marshal(p); err != nil {
		t.Fatalf("%s: problem does not marshal: %v", what, err)
	}
}

// holdSeeds are hold bodies, good and bad.
var holdSeeds = []string{
	`{"resource_id":"concert-standing"}`,
	`{"resource_id":"concert-standing","quantity":2}`,
	`{"resource_id":"hotel-alfama-standard","from":"2031-03-01","to":"2031-03-04","quantity":3}`,
	`{"resource_id":"tasca-table-1","from":"2031-06-01T19:30:00+01:00","to":"2031-06-01T20:30:00+01:00"}`,
	`{"resource_id":"r","quantity":0}`,
	`{"resource_id":"r","quantity":-1}`,
	`{"resource_id":"r","quantity":"2"}`,
	`{"resource_id":"r","quantity":1e400}`,
	`{"resource_id":"r","quantity":null}`,
	`{"resource_id":"Room-1"}`,
	`{"resource_id":"r","qty":1}`,
	`{"":1}`,
	`{"a\"b":1}`,
	`{"resource_id":"r"} {}`,
	`{"resource_id":"r"}]`,
	`{"resource_id":`,
	`[]`,
	`null`,
	``,
	"\xff",
}

func FuzzDecodeHoldRequest(f *testing.F) {
	for _, s := range holdSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, p := decodeHoldRequest(body)
		if p != nil {
			checkRefusal(t, "decodeHoldRequest", p)
			return
		}
		if req.Quantity == nil || *req.Quantity < 1 || *req.Quantity > maxQuantity {
			t.Fatalf("decodeHoldRequest(%q) quantity = %v, want 1..%d", body, req.Quantity, maxQuantity)
		}
		if !validID(req.ResourceID) {
			t.Fatalf("decodeHoldRequest(%q) resource_id = %q, not a valid id", body, req.ResourceID)
		}
		if len(req.From) > 64 || len(req.To) > 64 {
			t.Fatalf("decodeHoldRequest(%q) from/to longer than 64 bytes", body)
		}
		// What was accepted, written back, is accepted the same.
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("marshal %+v: %v", req, err)
		}
		req2, p := decodeHoldRequest(again)
		if p != nil {
			t.Fatalf("decodeHoldRequest(%q) accepted, its re-encoding %q refused: %s", body, again, describe(p))
		}
		if req2.ResourceID != req.ResourceID || *req2.Quantity != *req.Quantity || req2.From != req.From || req2.To != req.To {
			t.Fatalf("decodeHoldRequest round trip: %+v, then %+v", req, req2)
		}
	})
}

func FuzzDecodeListingRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":"hotel-alfama","provider_id":"p","kind":"accommodation","name":"Hotel","city":"Lisbon","time_zone":"Europe/Lisbon","attributes":{"stars":"4"}}`,
		`{"provider_id":"p","kind":"event","name":"Concert","city":"Berlin","time_zone":"Europe/Berlin"}`,
		`{"provider_id":"p","kind":"castle","name":"x","city":"y","time_zone":"UTC"}`,
		`{"provider_id":"p","kind":"service","name":"x","city":"y","time_zone":"Local"}`,
		`{"provider_id":"p","kind":"service","name":"x","city":"y","time_zone":"../../etc/passwd"}`,
		`{"provider_id":"p","kind":"service","name":"x","city":"y","time_zone":"UTC","attributes":{"":"v"}}`,
		`{"provider_id":"p","kind":"service","name":"x","city":"y","time_zone":"UTC","attributes":{"k":1}}`,
		`{"provider_id":"p","kind":"service","name":"\ud800","city":"y","time_zone":"UTC"}`,
		`{"provider_id":"p","rating":5}`,
		`{"":1}`,
		`{}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		l, p := decodeListingRequest(body)
		if p != nil {
			checkRefusal(t, "decodeListingRequest", p)
			return
		}
		switch {
		case !validID(l.ID), !validID(l.ProviderID):
			t.Fatalf("decodeListingRequest(%q) ids %q %q, not valid", body, l.ID, l.ProviderID)
		case !l.Kind.Valid():
			t.Fatalf("decodeListingRequest(%q) kind %q", body, l.Kind)
		case !goodName(l.Name), !goodName(l.City):
			t.Fatalf("decodeListingRequest(%q) name %q city %q", body, l.Name, l.City)
		case len(l.Attributes) > maxAttributes:
			t.Fatalf("decodeListingRequest(%q) has %d attributes", body, len(l.Attributes))
		}
		if _, err := time.LoadLocation(l.TimeZone); err != nil || l.TimeZone == "" || l.TimeZone == "Local" {
			t.Fatalf("decodeListingRequest(%q) time zone %q: %v", body, l.TimeZone, err)
		}
		for k, v := range l.Attributes {
			if k == "" || len(k) > 64 || len(v) > 1000 || !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("decodeListingRequest(%q) attribute %q=%q", body, k, v)
			}
		}
	})
}

func goodName(s string) bool { return s != "" && len(s) <= maxNameLen && utf8.ValidString(s) }

func FuzzDecodeResourceRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":"room-101","name":"Room 101","slot":{"unit":"night"},"capacity":1}`,
		`{"name":"Table","slot":{"unit":"minutes","minutes":30},"capacity":1,"hold_ttl_seconds":60}`,
		`{"name":"Pool","slot":{"unit":"single"},"capacity":5000}`,
		`{"name":"x","slot":{"unit":"minutes","minutes":7},"capacity":1}`,
		`{"name":"x","slot":{"unit":"minutes","minutes":"30"},"capacity":1}`,
		`{"name":"x","slot":{"unit":"night","minutes":30},"capacity":1}`,
		`{"name":"x","slot":{"unit":"night"},"capacity":0}`,
		`{"name":"x","slot":{"unit":"night"},"capacity":1,"hold_ttl_seconds":0}`,
		`{"name":"x","slot":{"unit":"night","x":1},"capacity":1}`,
		`{"name":"x","slot":"night"}`,
		`{"":1}`,
		``,
	} {
		f.Add([]byte(s), "hotel-alfama")
	}
	f.Fuzz(func(t *testing.T, body []byte, listingID string) {
		r, p := decodeResourceRequest(body, listingID)
		if p != nil {
			checkRefusal(t, "decodeResourceRequest", p)
			return
		}
		if !validID(r.ID) || r.ListingID != listingID || !goodName(r.Name) {
			t.Fatalf("decodeResourceRequest(%q) = %+v: bad id, listing or name", body, r)
		}
		switch r.Unit {
		case persistence.SlotNight, persistence.SlotSingle:
			if r.SlotMinutes != 0 {
				t.Fatalf("decodeResourceRequest(%q) = %+v: minutes on a %s slot", body, r, r.Unit)
			}
		case persistence.SlotMinutes:
			if r.SlotMinutes < 5 || 1440%r.SlotMinutes != 0 {
				t.Fatalf("decodeResourceRequest(%q) = %+v: minutes do not divide a day", body, r)
			}
		default:
			t.Fatalf("decodeResourceRequest(%q) = %+v: unit %q", body, r, r.Unit)
		}
		if r.Capacity < 1 || r.Capacity > maxCapacity || r.HoldTTL < time.Second || r.HoldTTL > 24*time.Hour || r.HoldTTL%time.Second != 0 {
			t.Fatalf("decodeResourceRequest(%q) = %+v: capacity or ttl out of range", body, r)
		}
	})
}

func FuzzDecodeProviderRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":"alfama-hospitality","name":"Alfama Hospitality"}`,
		`{"name":"Tasca do Chico"}`,
		`{"name":""}`,
		`{"id":"-x","name":"x"}`,
		`{"name":"x","email":"a@b"}`,
		`{"name":"\ud800"}`,
		`{"":1}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pr, p := decodeProviderRequest(body)
		if p != nil {
			checkRefusal(t, "decodeProviderRequest", p)
			return
		}
		if !validID(pr.ID) || !goodName(pr.Name) {
			t.Fatalf("decodeProviderRequest(%q) = %+v: bad id or name", body, pr)
		}
	})
}

func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"limit=2",
		"limit=2&cursor=" + encodeCursor("hotel-alfama"),
		"city=Lisbon&kind=restaurant",
		"city=S%C3%A3o+Paulo",
		"limit=0",
		"limit=101",
		"limit=abc",
		"cursor=%%%",
		"kind=castle",
		"sort=name",
		"=x",
		"&&",
		";",
		"limit=1&limit=500",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// Like r.URL.Query(): what parses is used, errors are dropped.
		q, _ := url.ParseQuery(raw)
		lq, p := parseListQuery(q)
		if p != nil {
			checkRefusal(t, "parseListQuery", p)
			return
		}
		if lq.Limit < 1 || lq.Limit > maxPageSize {
			t.Fatalf("parseListQuery(%q) limit %d", raw, lq.Limit)
		}
		if lq.After != "" && !validID(lq.After) {
			t.Fatalf("parseListQuery(%q) after %q, not a valid id", raw, lq.After)
		}
		if lq.Kind != "" && !lq.Kind.Valid() {
			t.Fatalf("parseListQuery(%q) kind %q", raw, lq.Kind)
		}
		if len(lq.City) > 200 {
			t.Fatalf("parseListQuery(%q) city of %d bytes", raw, len(lq.City))
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{encodeCursor("hotel-alfama"), encodeCursor("a"), encodeCursor(strings.Repeat("z", 64)), "", "bDE6", "bDE6YQ==", "!!!!", "bDE6\nYQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		id, err := decodeCursor(c)
		if err != nil {
			return
		}
		if !validID(id) {
			t.Fatalf("decodeCursor(%q) = %q, not a valid id", c, id)
		}
		again := encodeCursor(id)
		if got, err := decodeCursor(again); err != nil || got != id {
			t.Fatalf("decodeCursor(encodeCursor(%q)) = %q, %v, want %q", id, got, err, id)
		}
	})
}

func FuzzParseHoldID(f *testing.F) {
	f.Add("concert-standing."+strings.Repeat("a", holdTokenLen), "order-42")
	f.Add(newHoldID("hotel-alfama-room-101", "", "k"), "")
	f.Add("a.b.c", "k")
	f.Add("room.", "")
	f.Add(".aaaaaaaaaaaaaaaaaaaa", "x")
	f.Add("Room-1.aaaaaaaaaaaaaaaaaaaa", "x")
	f.Fuzz(func(t *testing.T, id, key string) {
		res, ok := parseHoldID(id)
		if ok {
			if !validID(res) {
				t.Fatalf("parseHoldID(%q) = %q, not a valid resource id", id, res)
			}
			token, found := strings.CutPrefix(id, res+".")
			if !found || len(token) != holdTokenLen || strings.Trim(token, tokenAlphabet) != "" {
				t.Fatalf("parseHoldID(%q) = %q, but the rest is not a hold token", id, res)
			}
		} else if res != "" {
			t.Fatalf("parseHoldID(%q) = %q, false: want no resource on failure", id, res)
		}
		// Every id the edge makes parses back to its resource.
		if validID(id) {
			made := newHoldID(id, "", key)
			if got, ok := parseHoldID(made); !ok || got != id {
				t.Fatalf("parseHoldID(newHoldID(%q, \"\", %q) = %q) = %q, %v", id, key, made, got, ok)
			}
			if key != "" && newHoldID(id, "", key) != made {
				t.Fatalf("newHoldID(%q, \"\", %q) is not stable", id, key)
			}
		}
	})
}
