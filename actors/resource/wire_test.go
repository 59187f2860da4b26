package resource

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
)

// checkAppendEvent holds appendEvent to proto.Marshal for ev: the same
// bytes after a prefix, or the same refusal.
func checkAppendEvent(t *testing.T, ev *bookdv1.Event) {
	t.Helper()
	want, wantErr := proto.Marshal(ev)
	prefix := []byte("prefix")
	got, err := appendEvent(bytes.Clone(prefix), ev)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("appendEvent(%v) error %v, proto.Marshal error %v", ev, err, wantErr)
	}
	if err != nil {
		return
	}
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("appendEvent(%v) = %x after the prefix, proto.Marshal = %x", ev, got[len(prefix):], want)
	}
	// The encoder itself, not a fallback to proto.Marshal, wrote them.
	if k, ok := ev.GetKind().(*bookdv1.Event_Placed); ok && k.Placed != nil && placedUTF8(k.Placed) {
		if own := appendPlacedEvent(nil, ev.GetAtMs(), k.Placed); !bytes.Equal(own, want) {
			t.Fatalf("appendPlacedEvent(%v) = %x, proto.Marshal = %x", ev, own, want)
		}
	}
}

func placed(atMs int64, p *bookdv1.HoldPlaced) *bookdv1.Event {
	return &bookdv1.Event{AtMs: atMs, Kind: &bookdv1.Event_Placed{Placed: p}}
}

func TestAppendEvent(t *testing.T) {
	for _, ev := range []*bookdv1.Event{
		placed(1_795_000_000_000, &bookdv1.HoldPlaced{HoldId: "concert-standing.wnpcojwaquykutjfs6fr", Quantity: 2,
			ExpiresAtMs: 1_795_000_600_000, Owner: "usr-1", Fingerprint: "sha256:abc"}),
		placed(1_795_000_000_000, &bookdv1.HoldPlaced{HoldId: "room-101.x", From: "2030-05-31", To: "2030-06-05",
			FromKey: 20238, ToKey: 20243, Quantity: 1, ExpiresAtMs: 1, Owner: "usr-2"}),
		placed(0, &bookdv1.HoldPlaced{}),                                                                       // every field zero
		placed(-1, &bookdv1.HoldPlaced{FromKey: math.MinInt64, ToKey: -1}),                                     // negative: ten bytes each
		placed(math.MaxInt64, &bookdv1.HoldPlaced{Quantity: math.MaxUint32, HoldId: strings.Repeat("é", 200)}), // long: a two-byte length
		placed(5, &bookdv1.HoldPlaced{Owner: "bad \xff utf-8"}),                                                // refused by both
		placed(5, nil),
		{AtMs: 7, Kind: &bookdv1.Event_Confirmed{Confirmed: &bookdv1.HoldConfirmed{HoldId: "h"}}},
		{AtMs: 7},
	} {
		checkAppendEvent(t, ev)
	}

	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		if r.IntN(4) == 0 {
			return ""
		}
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(' ' + r.IntN(95))
		}
		return string(b)
	}
	num := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return -r.Int64()
		default:
			return r.Int64N(1 << uint(r.IntN(62)+1))
		}
	}
	for range 2000 {
		checkAppendEvent(t, placed(num(), &bookdv1.HoldPlaced{HoldId: str(), From: str(), To: str(), FromKey: num(), ToKey: num(),
			Quantity: r.Uint32() >> uint(r.IntN(33)), ExpiresAtMs: num(), Owner: str(), Fingerprint: str()}))
	}
}

func FuzzAppendPlaced(f *testing.F) {
	f.Add(int64(1_795_000_000_000), "concert-standing.wnpcojwaquykutjfs6fr", "", "", int64(0), int64(0), uint32(2), int64(1_795_000_600_000), "usr-1", "sha256:abc")
	f.Add(int64(-1), "h", "2030-05-31", "2030-06-05", int64(-20238), int64(math.MaxInt64), uint32(math.MaxUint32), int64(0), "", "\xff")
	f.Fuzz(func(t *testing.T, atMs int64, id, from, to string, fromKey, toKey int64, qty uint32, exp int64, owner, fp string) {
		checkAppendEvent(t, placed(atMs, &bookdv1.HoldPlaced{HoldId: id, From: from, To: to, FromKey: fromKey, ToKey: toKey,
			Quantity: qty, ExpiresAtMs: exp, Owner: owner, Fingerprint: fp}))
	})
}
