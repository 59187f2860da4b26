package edge

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// IDs of providers, listings and resources are slugs: lowercase letters,
// digits and dashes, starting with a letter or digit, at most 64 bytes. A
// hold id is the id of its resource, a dot, and a 20-character token, so any
// node can route a hold to its resource without a lookup.

const (
	maxIDLen       = 64
	holdTokenLen   = 20
	maxIdemKeyLen  = 255
	tokenAlphabet  = "abcdefghijklmnopqrstuvwxyz234567"
	generatedIDLen = 16
)

var tokenEncoding = base32.NewEncoding(tokenAlphabet).WithPadding(base32.NoPadding)

// validID reports whether s is a well-formed catalog id.
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// newID returns a fresh random id with a prefix, such as "res-k3j…".
func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + tokenEncoding.EncodeToString(b[:])[:generatedIDLen]
}

// newHoldID returns the id of a new hold on resourceID. With an
// idempotency key the token is derived from it and from the user whose key
// it is (userID, when not empty), so a retry with the same key names the
// same hold and the resource actor answers it as the first time.
func newHoldID(resourceID, userID, idempotencyKey string) string {
	// The token is the start of the base32 of 15 bytes (24 characters); the
	// hash's input stays on the stack unless the ids are unusually long.
	var src [sha256.Size]byte
	if idempotencyKey == "" {
		_, _ = rand.Read(src[:15])
	} else {
		// Room for a user id of 64 bytes (generated ones have 20); a longer
		// one only moves the input to the heap.
		var buf [16 + maxIDLen + 64 + maxIdemKeyLen]byte
		in := append(append(append(buf[:0], "bookd/hold\x00"...), resourceID...), 0)
		if userID != "" {
			in = append(append(in, userID...), 0)
		}
		src = sha256.Sum256(append(in, idempotencyKey...))
	}
	var token [24]byte
	tokenEncoding.Encode(token[:], src[:15])
	return resourceID + "." + string(token[:holdTokenLen])
}

// parseHoldID returns the resource id of a hold id; ok is false when id is
// not a well-formed hold id.
func parseHoldID(id string) (resourceID string, ok bool) {
	i := strings.LastIndexByte(id, '.')
	if i < 0 || len(id)-i-1 != holdTokenLen || !validID(id[:i]) {
		return "", false
	}
	for _, c := range id[i+1:] {
		if !strings.ContainsRune(tokenAlphabet, c) {
			return "", false
		}
	}
	return id[:i], true
}

// validIdempotencyKey reports whether k is a usable Idempotency-Key: 1 to
// 255 printable ASCII characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdemKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}
