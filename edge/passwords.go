package edge

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2 are the argon2id parameters of new password hashes. Hashes carry
// their parameters, so changing these does not invalidate stored ones.
type Argon2 struct {
	// MemoryKiB is the memory cost in KiB. Default 65536 (64 MiB).
	MemoryKiB uint32
	// Time is the number of passes. Default 2.
	Time uint32
	// Threads is the parallelism. Default 2.
	Threads uint8
}

// DefaultArgon2 returns the defaults documented on Argon2 (RFC 9106's
// second recommendation, lighter in time for a 2-core node).
func DefaultArgon2() Argon2 { return Argon2{MemoryKiB: 64 << 10, Time: 2, Threads: 2} }

// hashPassword returns the PHC string of password.
func (a Argon2) hashPassword(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, a.Time, a.MemoryKiB, a.Threads, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, a.MemoryKiB, a.Time, a.Threads, b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// HashPassword is hashPassword for `bookd admin create`.
func (a Argon2) HashPassword(password string) string { return a.hashPassword(password) }

// checkPassword reports whether password matches the PHC string phc.
func checkPassword(phc, password string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 4<<20 || t == 0 || t > 100 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
