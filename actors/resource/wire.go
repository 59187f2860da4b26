package resource

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
)

// appendEvent appends ev, a new event the actor made, in protobuf's wire
// format to b. A hold placed, which a sale writes once per decision, is
// encoded here field by field: byte for byte what proto.Marshal writes
// (TestAppendEvent and FuzzAppendPlaced hold it to that), at a fraction
// of its cost, which was about 3% of a node's CPU on a hot resource.
// Every other event, and a placed one with a string that is not UTF-8
// (which proto.Marshal refuses), goes to proto.Marshal. Unknown fields,
// which only a decoded message has, are not written: ev must be new.
func appendEvent(b []byte, ev *bookdv1.Event) ([]byte, error) {
	if k, ok := ev.GetKind().(*bookdv1.Event_Placed); ok && k.Placed != nil && placedUTF8(k.Placed) {
		return appendPlacedEvent(b, ev.GetAtMs(), k.Placed), nil
	}
	return proto.MarshalOptions{}.MarshalAppend(b, ev)
}

func placedUTF8(p *bookdv1.HoldPlaced) bool {
	return utf8.ValidString(p.HoldId) && utf8.ValidString(p.From) && utf8.ValidString(p.To) &&
		utf8.ValidString(p.Owner) && utf8.ValidString(p.Fingerprint)
}

// The field numbers of Event and HoldPlaced (messages/bookd/v1/resource.proto).
const (
	eventAtMs   protowire.Number = 1
	eventPlaced protowire.Number = 2

	placedHoldID      protowire.Number = 1
	placedFrom        protowire.Number = 2
	placedTo          protowire.Number = 3
	placedFromKey     protowire.Number = 4
	placedToKey       protowire.Number = 5
	placedQuantity    protowire.Number = 6
	placedExpiresAtMs protowire.Number = 7
	placedOwner       protowire.Number = 8
	placedFingerprint protowire.Number = 9
)

// appendPlacedEvent appends Event{at_ms: atMs, placed: p}: fields in
// number order, proto3's zero values left out, as proto.Marshal does.
func appendPlacedEvent(b []byte, atMs int64, p *bookdv1.HoldPlaced) []byte {
	b = appendVarintField(b, eventAtMs, uint64(atMs))
	b = protowire.AppendTag(b, eventPlaced, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(placedSize(p)))
	b = appendStringField(b, placedHoldID, p.HoldId)
	b = appendStringField(b, placedFrom, p.From)
	b = appendStringField(b, placedTo, p.To)
	b = appendVarintField(b, placedFromKey, uint64(p.FromKey))
	b = appendVarintField(b, placedToKey, uint64(p.ToKey))
	b = appendVarintField(b, placedQuantity, uint64(p.Quantity))
	b = appendVarintField(b, placedExpiresAtMs, uint64(p.ExpiresAtMs))
	b = appendStringField(b, placedOwner, p.Owner)
	return appendStringField(b, placedFingerprint, p.Fingerprint)
}

func placedSize(p *bookdv1.HoldPlaced) int {
	return stringFieldSize(placedHoldID, p.HoldId) + stringFieldSize(placedFrom, p.From) + stringFieldSize(placedTo, p.To) +
		varintFieldSize(placedFromKey, uint64(p.FromKey)) + varintFieldSize(placedToKey, uint64(p.ToKey)) +
		varintFieldSize(placedQuantity, uint64(p.Quantity)) + varintFieldSize(placedExpiresAtMs, uint64(p.ExpiresAtMs)) +
		stringFieldSize(placedOwner, p.Owner) + stringFieldSize(placedFingerprint, p.Fingerprint)
}

func appendVarintField(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendStringField(b []byte, n protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func varintFieldSize(n protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeVarint(v)
}

func stringFieldSize(n protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeBytes(len(s))
}
