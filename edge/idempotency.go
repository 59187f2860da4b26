package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bookd/bookd/persistence"
)

// Idempotency-Key, per user, kept persistence.IdemTTL (24 h):
//
//   - POST /v1/holds: the hold id is derived from (user, key, resource), so
//     the resource actor, the hold's single writer, is the record: a repeat
//     with the same body gets the hold as it stands (201), one with another
//     body 422 (the actor compares the request's fingerprint), one while the
//     first is decided but not committed 409. The same key on another
//     resource cannot reach that actor, so the key is also claimed in
//     Config.Claims with the request's fingerprint; a claim of another
//     fingerprint is 422. Claims are cheap on purpose: in memory on one
//     node, one Redis SET NX GET in the cluster profile; never a database
//     write on the hot path (a PostgreSQL insert, even without a
//     synchronous commit, cut the flash sale to a third). A lost claim (a
//     restart, a Redis failover) lets a client that changed its body under
//     the same key hold on a second resource; the same-resource
//     guarantees, which protect against double booking, are in the journal
//     and never lost. A rejection (sold out) is not kept: a retry is
//     decided again.
//   - every other POST that creates something: the store keeps the first
//     answer (persistence.Accounts.BeginIdempotent): the same key and body
//     replay it, another body is 422, a key still in flight 409; a 5xx is
//     not kept, so the request may be retried, nor a 415, which answers the
//     Content-Type that the fingerprint leaves out.

// idemFingerprint identifies a request: method, path and body (128 bits of
// SHA-256; it travels in every HoldPlaced event, so it is kept short).
func idemFingerprint(r *http.Request, body []byte) string {
	h := sha256.New()
	h.Write([]byte(r.Method))
	h.Write([]byte{' '})
	h.Write([]byte(r.URL.Path))
	h.Write([]byte{'\n'})
	h.Write(body)
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0])[:16])
}

// idempotencyKey returns the request's Idempotency-Key ("" for none) or a
// problem when it is malformed.
func idempotencyKey(r *http.Request) (string, *Problem) {
	key := r.Header.Get("Idempotency-Key")
	if key != "" && !validIdempotencyKey(key) {
		return "", invalidField("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
	}
	return key, nil
}

// idempotent runs h under the request's Idempotency-Key, if any.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	key, p := idempotencyKey(r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	who := principal(r)
	if key == "" || who == nil {
		h(w, r)
		return
	}
	body, p := readLimited(w, r, s.cfg.MaxBodyBytes)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	fp := idemFingerprint(r, body)
	prev, started, err := s.store.BeginIdempotent(r.Context(), persistence.IdemRecord{UserID: who.UserID, Key: key, Fingerprint: fp, CreatedAt: s.cfg.Now()})
	if err != nil {
		s.internal(w, r, "idempotency key", err)
		return
	}
	if !started {
		switch {
		case prev.Fingerprint != fp:
			writeProblem(w, r, newProblem(probIdempotency, "the Idempotency-Key %q was used with another request", key))
		case prev.Status == 0:
			writeProblem(w, r, newProblem(probInFlight, "the request with Idempotency-Key %q is still being processed", key))
		default:
			if prev.Location != "" {
				w.Header().Set("Location", prev.Location)
			}
			w.Header().Set("Idempotent-Replayed", "true")
			ct := "application/json"
			if prev.Status >= 400 {
				ct = "application/problem+json"
			}
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(prev.Status)
			_, _ = w.Write(prev.Body)
		}
		return
	}
	rec := &recorder{ResponseWriter: w}
	h(rec, r)
	// The claim is settled even when the client went away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	// A 5xx may not happen again; a 415 answers the Content-Type, which the
	// fingerprint leaves out, so a retry that fixes it must run, not be
	// answered the 415 again. Neither is kept.
	if rec.status >= 500 || rec.status == 0 || rec.status == http.StatusUnsupportedMediaType {
		err = s.store.AbandonIdempotent(ctx, who.UserID, key)
	} else {
		err = s.store.FinishIdempotent(ctx, who.UserID, key, rec.status, rec.Header().Get("Location"), rec.body.Bytes())
	}
	if err != nil {
		s.log.Error("settle idempotency key", "error", err)
	}
}

// recorder passes an answer through and keeps a copy.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// KeyClaims remembers, per user and Idempotency-Key, the fingerprint of the
// first request (POST /v1/holds only).
type KeyClaims interface {
	// Claim records fingerprint for (userID, key) unless the key holds one
	// already, and returns the one it holds ("" when it was free).
	Claim(ctx context.Context, userID, key, fingerprint string) (prev string, err error)
}

// memoryClaims keeps claims in this process, in shards of two
// generations of persistence.IdemTTL each: a claim lives one to two TTLs.
// A shard's generation that grows past its share of max entries is turned
// over early.
//
// A sale claims a key per request and keeps hundreds of thousands of them,
// so an entry holds no pointer: the user and key are kept as a 128-bit
// keyed hash (two 64-bit maphashes; a collision, about one in 2^128 per
// pair, would answer one key with another's fingerprint), the fingerprint
// inline when it is short, as idemFingerprint's are. The collector then
// never scans the claims, and a lookup touches one slot, not three
// strings.
type memoryClaims struct {
	seeds  [2]maphash.Seed
	max    int // per shard
	now    func() time.Time
	shards [32]claimShard
}

type claimShard struct {
	mu        sync.Mutex
	cur, prev claimGen
	turned    time.Time
}

// claimKey is the hash of a user and a key.
type claimKey [2]uint64

// claimFP is a fingerprint of up to len(b) bytes, inline.
type claimFP struct {
	n uint8
	b [23]byte
}

// claimGen is one generation of a shard: fingerprints inline, and the rare
// longer ones on their own.
type claimGen struct {
	short map[claimKey]claimFP
	long  map[claimKey]string
}

func newClaimGen() claimGen {
	return claimGen{short: map[claimKey]claimFP{}, long: map[claimKey]string{}}
}

func (g claimGen) len() int { return len(g.short) + len(g.long) }

func (g claimGen) get(k claimKey) (string, bool) {
	if v, ok := g.short[k]; ok {
		return string(v.b[:v.n]), true
	}
	v, ok := g.long[k]
	return v, ok
}

func (g claimGen) put(k claimKey, fp string) {
	var v claimFP
	if len(fp) > len(v.b) {
		g.long[k] = fp
		return
	}
	v.n = uint8(copy(v.b[:], fp))
	g.short[k] = v
}

// NewMemoryClaims returns claims for one node (the embedded profile),
// bounded to about 2 × max entries (0: 1,000,000).
func NewMemoryClaims(max int) KeyClaims {
	if max <= 0 {
		max = 1_000_000
	}
	c := &memoryClaims{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, now: time.Now}
	c.max = max/len(c.shards) + 1
	for i := range c.shards {
		c.shards[i] = claimShard{cur: newClaimGen(), prev: newClaimGen(), turned: c.now()}
	}
	return c
}

// key hashes userID and key (a user id has no NUL, so the pair is one
// string unambiguously).
func (c *memoryClaims) key(userID, key string) claimKey {
	var k claimKey
	for i, seed := range c.seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(userID)
		h.WriteByte(0)
		h.WriteString(key)
		k[i] = h.Sum64()
	}
	return k
}

func (c *memoryClaims) Claim(_ context.Context, userID, key, fp string) (string, error) {
	k := c.key(userID, key)
	sh := &c.shards[k[0]%uint64(len(c.shards))]
	now := c.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now.Sub(sh.turned) > persistence.IdemTTL || sh.cur.len() >= c.max {
		sh.prev, sh.cur, sh.turned = sh.cur, newClaimGen(), now
	}
	if v, ok := sh.cur.get(k); ok {
		return v, nil
	}
	if v, ok := sh.prev.get(k); ok {
		return v, nil
	}
	sh.cur.put(k, fp)
	return "", nil
}

// redisClaims keeps claims in Redis: one SET NX GET with a 24-hour expiry.
type redisClaims struct{ rdb redis.UniversalClient }

// NewRedisClaims returns claims shared by every node (the cluster profile;
// Redis 7 or later).
func NewRedisClaims(rdb redis.UniversalClient) KeyClaims { return redisClaims{rdb: rdb} }

func (c redisClaims) Claim(ctx context.Context, userID, key, fp string) (string, error) {
	prev, err := c.rdb.SetArgs(ctx, "bookd:idem:"+userID+"\x00"+key, fp, redis.SetArgs{Mode: "NX", Get: true, TTL: persistence.IdemTTL}).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis claim: %w", err)
	}
	return prev, nil
}
