package edge

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
)

// The hold fast paths must be encoding/json exactly: what the fast decoder
// accepts, encoding/json (strict) accepts with the same result, and the
// fast encoder writes what json.Encoder writes.
//
//	go test ./edge -run '^$' -fuzz '^FuzzHoldRequestFastPath$' -fuzztime 20s
//	go test ./edge -run '^$' -fuzz '^FuzzHoldJSONFastPath$' -fuzztime 20s

var fastHoldSeeds = []string{
	` { "resource_id" : "concert-standing" , "quantity" : 12 } `,
	`{"quantity":-0,"resource_id":"r"}`,
	`{"quantity":007,"resource_id":"r"}`,
	`{"quantity":1.0,"resource_id":"r"}`,
	`{"quantity":123456789012345678901,"resource_id":"r"}`,
	`{"resource_id":"r","resource_id":"s"}`,
	`{"Resource_ID":"r"}`,
	`{"resource_id":"r\u0041"}`,
	`{"resource_id":"ré"}`,
	`{"from":null,"resource_id":"r"}`,
	`{}`,
	`{,}`,
	`{"resource_id":"r",}`,
	"{\"resource_id\":\"r\"}\x00",
}

func FuzzHoldRequestFastPath(f *testing.F) {
	for _, s := range append(holdSeeds, fastHoldSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodeHoldRequestFast(body)
		if !ok {
			if fast != (HoldRequest{}) {
				t.Fatalf("decodeHoldRequestFast(%q) refused but returned %+v", body, fast)
			}
			return
		}
		var slow HoldRequest
		if p := unmarshalStrict(body, &slow); p != nil {
			t.Fatalf("decodeHoldRequestFast(%q) = %+v, encoding/json refuses it: %s", body, fast, describe(p))
		}
		if fast.ResourceID != slow.ResourceID || fast.From != slow.From || fast.To != slow.To ||
			(fast.Quantity == nil) != (slow.Quantity == nil) || (fast.Quantity != nil && *fast.Quantity != *slow.Quantity) {
			t.Fatalf("body %q: fast path %+v (quantity %v), encoding/json %+v (quantity %v)", body, fast, fast.Quantity, slow, slow.Quantity)
		}
	})
}

func TestHoldRequestFastPathTakesPlainBodies(t *testing.T) {
	for _, body := range []string{
		`{"resource_id":"concert-standing"}`,
		`{"resource_id":"hotel-alfama-standard","from":"2031-03-01","to":"2031-03-04","quantity":3}`,
		` { "quantity" : 2 , "resource_id" : "r" } `,
	} {
		if _, ok := decodeHoldRequestFast([]byte(body)); !ok {
			t.Errorf("decodeHoldRequestFast(%q) refused a plain body", body)
		}
	}
	for _, body := range []string{`{"resource_id":"r\u0041"}`, `{"Resource_ID":"r"}`, `{"quantity":1e2}`, `{"resource_id":"r","resource_id":"s"}`} {
		if _, ok := decodeHoldRequestFast([]byte(body)); ok {
			t.Errorf("decodeHoldRequestFast(%q) took a body it must leave to encoding/json", body)
		}
	}
}

func FuzzHoldJSONFastPath(f *testing.F) {
	f.Add("concert-standing.abcdefghijklmnopqrstu", "concert-standing", int32(1), uint32(2), "", "", int64(1795495295123), int64(1795495295123), int64(1795495895123))
	f.Add("x", "y<&>\u2028\"\\\x01é\xff", int32(2), uint32(0), "2031-03-01", "2031-03-04", int64(-62135596800000), int64(0), int64(253402300799999))
	f.Add("", "", int32(5), uint32(4294967295), "2031-06-01T19:30:00+01:00", "\t", int64(1), int64(-1), int64(9e15))
	f.Fuzz(func(t *testing.T, id, res string, status int32, qty uint32, from, to string, created, updated, expires int64) {
		h := &bookdv1.Hold{HoldId: id, ResourceId: res, Status: bookdv1.HoldStatus(status), Quantity: qty, From: from, To: to,
			CreatedAtMs: created, UpdatedAtMs: updated, ExpiresAtMs: expires}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(holdJSON(h)); err != nil {
			t.Fatal(err)
		}
		if got := appendHoldJSON(nil, h); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendHoldJSON:\n got %s\nwant %s", got, want.Bytes())
		}
	})
}

// TestAppendMsTime holds the digit-by-digit writer to the layout at the
// ends of its range, across them, and at random.
func TestAppendMsTime(t *testing.T) {
	year0 := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	year10000 := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	cases := []int64{0, 1, -1, 999, 1000, -1000, 1795495295123, year0, year0 - 1, year10000, year10000 - 1,
		time.Date(2028, 2, 29, 23, 59, 59, 999e6, time.UTC).UnixMilli(), math.MaxInt64, math.MinInt64}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		cases = append(cases, year0+rng.Int64N(year10000-year0), rng.Int64N(1<<50)-1<<49)
	}
	for _, ms := range cases {
		want := `"` + msTime(ms) + `"`
		if got := string(appendMsTime([]byte("x"), ms)); got != "x"+want {
			t.Fatalf("appendMsTime(%d) = %s, want x%s", ms, got, want)
		}
	}
}
