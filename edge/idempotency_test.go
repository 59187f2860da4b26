package edge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// TestIdempotencyKeyGeneric covers the store-kept Idempotency-Key of the
// POST routes other than holds: replay, another body, in flight, per user,
// 5xx not kept.
func TestIdempotencyKeyGeneric(t *testing.T) {
	s := newTestServer(t, nil)
	ana, anaTok := testUser(t, s, persistence.RoleProvider)
	_, bobTok := testUser(t, s, persistence.RoleProvider)
	header := func(tok, key string) http.Header {
		return http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}, "Idempotency-Key": {key}}
	}
	// The first request, then the same again: the first answer, replayed.
	w1, _ := serve(s, "POST", "/v1/admin/providers", header(anaTok, "k1"), `{"id":"prv-ana","name":"Ana"}`)
	w2, _ := serve(s, "POST", "/v1/admin/providers", header(anaTok, "k1"), `{"id":"prv-ana","name":"Ana"}`)
	if w1.Code != 201 || w2.Code != 201 || w1.Body.String() != w2.Body.String() || w2.Header().Get("Idempotent-Replayed") != "true" || w2.Header().Get("Location") != "/v1/admin/providers/prv-ana" {
		t.Errorf("the same request twice = %d %s, then %d %s (replayed %q); want the first answer again", w1.Code, w1.Body, w2.Code, w2.Body, w2.Header().Get("Idempotent-Replayed"))
	}
	tests := []struct {
		name       string
		header     http.Header
		body       string
		wantStatus int
		wantType   string
	}{
		{"same key, another body", header(anaTok, "k1"), `{"id":"prv-ana2","name":"Ana"}`, 422, "/problems/idempotency-conflict"},
		{"same key, another route", header(anaTok, "k1"), `{"name":"x","owner_id":"` + ana + `"}`, 422, "/problems/idempotency-conflict"},
		{"another user's key is theirs", header(bobTok, "k1"), `{"id":"prv-bob","name":"Bob"}`, 201, ""},
		{"a 4xx is kept as well", header(anaTok, "k2"), `{"id":"prv-ana","name":"Ana"}`, 409, "/problems/conflict"},
	}
	for _, tt := range tests {
		path := "/v1/admin/providers"
		if strings.Contains(tt.body, "owner_id") {
			path = "/v1/admin/listings"
		}
		w, p := serve(s, "POST", path, tt.header, tt.body)
		if w.Code != tt.wantStatus || (tt.wantType != "" && (p == nil || p.Type != tt.wantType)) {
			t.Errorf("%s = %d %s, want %d %s", tt.name, w.Code, w.Body, tt.wantStatus, tt.wantType)
		}
	}
	// In flight: the key is claimed and not answered yet.
	body := `{"id":"prv-slow","name":"Slow"}`
	r := httptest.NewRequest("POST", "/v1/admin/providers", strings.NewReader(body))
	if _, started, err := s.store.BeginIdempotent(t.Context(), persistence.IdemRecord{UserID: ana, Key: "k3", Fingerprint: idemFingerprint(r, []byte(body)), CreatedAt: time.Now()}); err != nil || !started {
		t.Fatalf("BeginIdempotent = %v, %v", started, err)
	}
	if w, p := serve(s, "POST", "/v1/admin/providers", header(anaTok, "k3"), body); w.Code != 409 || p.Type != "/problems/idempotency-in-flight" || w.Header().Get("Retry-After") == "" {
		t.Errorf("a key in flight = %d %s, want 409 idempotency-in-flight with Retry-After", w.Code, w.Body)
	}
}

// TestIdempotencyFiveHundredNotKept: a 5xx answer releases the key, so the
// retry runs the request again.
func TestIdempotencyFiveHundredNotKept(t *testing.T) {
	s := newTestServer(t, nil)
	user, _ := testUser(t, s, persistence.RoleProvider)
	calls := 0
	h := func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			writeProblem(w, r, newProblem(probInternal, "boom"))
			return
		}
		writeJSON(w, http.StatusCreated, map[string]int{"call": calls})
	}
	do := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/admin/providers", strings.NewReader(`{"name":"x"}`))
		r.Header.Set("Idempotency-Key", "retry-me")
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, &Principal{UserID: user, Role: persistence.RoleProvider}))
		w := httptest.NewRecorder()
		s.idempotent(w, r, h)
		return w
	}
	for i, want := range []int{500, 201, 201} {
		if w := do(); w.Code != want {
			t.Errorf("attempt %d = %d %s, want %d", i+1, w.Code, w.Body, want)
		}
	}
	if calls != 2 {
		t.Errorf("the handler ran %d times, want 2 (the 500, then the 201 which is replayed after)", calls)
	}
}

// TestIdempotencyWrongContentTypeNotKept: a request refused for its
// Content-Type, which the fingerprint does not cover, leaves the key free:
// the retry with the right type and the same key is served, and then kept.
func TestIdempotencyWrongContentTypeNotKept(t *testing.T) {
	s := newTestServer(t, nil)
	_, tok := testUser(t, s, persistence.RoleProvider)
	body := `{"id":"prv-typed","name":"Typed"}`
	header := func(ct string) http.Header {
		return http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {ct}, "Idempotency-Key": {"typed"}}
	}
	if w, p := serve(s, "POST", "/v1/admin/providers", header("text/plain"), body); w.Code != 415 || p == nil {
		t.Fatalf("POST with text/plain = %d %s, want 415", w.Code, w.Body)
	}
	w, _ := serve(s, "POST", "/v1/admin/providers", header("application/json"), body)
	if w.Code != 201 || w.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("the retry with application/json = %d %s (replayed %q), want 201 served", w.Code, w.Body, w.Header().Get("Idempotent-Replayed"))
	}
	if w, _ := serve(s, "POST", "/v1/admin/providers", header("application/json"), body); w.Code != 201 || w.Header().Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same request again = %d (replayed %q), want the 201 replayed", w.Code, w.Header().Get("Idempotent-Replayed"))
	}
}

// TestHoldIdempotency covers POST /v1/holds: the hold id is per user, the
// fingerprint travels to the actor, and the same key on another resource
// with another body is 422 before any actor is asked.
func TestHoldIdempotency(t *testing.T) {
	var sent []*bookdv1.PlaceHold
	s := newTestServer(t, &fakeActors{reply: func(_, identity string, msg any) (any, error) {
		p := msg.(*bookdv1.PlaceHold)
		sent = append(sent, p)
		return &bookdv1.HoldReply{Hold: &bookdv1.Hold{HoldId: p.HoldId, ResourceId: identity, Status: bookdv1.HoldStatus_HOLD_STATUS_HELD, Quantity: p.Quantity}}, nil
	}})
	ana, anaTok := testUser(t, s, persistence.RoleCustomer)
	bob, bobTok := testUser(t, s, persistence.RoleCustomer)
	hold := func(tok, body string) *httptest.ResponseRecorder {
		w, _ := serve(s, "POST", "/v1/holds", http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}, "Idempotency-Key": {"order-1"}}, body)
		return w
	}
	if w := hold(anaTok, `{"resource_id":"r-a"}`); w.Code != 201 {
		t.Fatalf("first hold = %d %s", w.Code, w.Body)
	}
	if w := hold(anaTok, `{"resource_id":"r-a"}`); w.Code != 201 {
		t.Fatalf("the same hold again = %d %s", w.Code, w.Body)
	}
	if w := hold(bobTok, `{"resource_id":"r-a"}`); w.Code != 201 {
		t.Fatalf("bob's hold with the same key = %d %s", w.Code, w.Body)
	}
	if len(sent) != 3 || sent[0].HoldId != sent[1].HoldId || sent[0].Fingerprint != sent[1].Fingerprint || sent[0].Fingerprint == "" {
		t.Fatalf("sent %v, want ana's two requests to name one hold with one fingerprint", sent)
	}
	if sent[2].HoldId == sent[0].HoldId || sent[0].Owner != ana || sent[2].Owner != bob {
		t.Errorf("bob's hold id %s, ana's %s (owners %s, %s): want distinct holds owned by each", sent[2].HoldId, sent[0].HoldId, sent[0].Owner, sent[2].Owner)
	}
	w := hold(anaTok, `{"resource_id":"r-b"}`)
	if w.Code != 422 || len(sent) != 3 {
		t.Errorf("ana's key on another resource = %d %s (%d sent), want 422 without asking an actor", w.Code, w.Body, len(sent))
	}
}

// slowClaims is a claims store kept elsewhere that takes delay to answer,
// or until its context ends.
type slowClaims struct{ delay time.Duration }

func (c slowClaims) Claim(ctx context.Context, _, _, _ string) (string, error) {
	select {
	case <-time.After(c.delay):
		return "", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// TestHoldOneDeadline: RequestTimeout bounds POST /v1/holds whole: a claims
// store that does not answer is given up at the deadline (503), and the
// resource gets what the claim left of it.
func TestHoldOneDeadline(t *testing.T) {
	fa := &fakeActors{reply: func(_, identity string, msg any) (any, error) {
		p := msg.(*bookdv1.PlaceHold)
		return &bookdv1.HoldReply{Hold: &bookdv1.Hold{HoldId: p.HoldId, ResourceId: identity, Status: bookdv1.HoldStatus_HOLD_STATUS_HELD, Quantity: p.Quantity}}, nil
	}}
	s := newTestServer(t, fa)
	_, tok := testUser(t, s, persistence.RoleCustomer)
	s.cfg.RequestTimeout = 400 * time.Millisecond
	hold := func(key string) *httptest.ResponseRecorder {
		w, _ := serve(s, "POST", "/v1/holds", http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}, "Idempotency-Key": {key}}, `{"resource_id":"r"}`)
		return w
	}
	s.cfg.Claims = slowClaims{delay: time.Minute}
	start := time.Now()
	if w := hold("stuck"); w.Code != 503 || len(fa.sent) != 0 {
		t.Errorf("a hold whose claim never answers = %d %s (%d sent to the resource), want 503 and nothing sent", w.Code, w.Body, len(fa.sent))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a hold whose claim never answers took %v, want about its RequestTimeout of 400ms", took)
	}
	s.cfg.Claims = slowClaims{delay: 250 * time.Millisecond}
	if w := hold("slow"); w.Code != 201 {
		t.Fatalf("a hold whose claim takes 250ms = %d %s, want 201", w.Code, w.Body)
	}
	if got := fa.timeouts[len(fa.timeouts)-1]; got > 150*time.Millisecond || got <= 0 {
		t.Errorf("the resource was given %v, want what the 250ms claim left of 400ms", got)
	}
}

// TestMemoryClaims: a claim answers its own fingerprint, short or long, to
// its user and key only, among many.
func TestMemoryClaims(t *testing.T) {
	c := NewMemoryClaims(0)
	ctx := t.Context()
	claim := func(user, key, fp string) string {
		t.Helper()
		prev, err := c.Claim(ctx, user, key, fp)
		if err != nil {
			t.Fatal(err)
		}
		return prev
	}
	long := strings.Repeat("f", 40)
	for i := range 10000 {
		user, key := fmt.Sprintf("u%d", i%100), fmt.Sprintf("k%d", i/100)
		fp := fmt.Sprintf("fp-%d", i)
		if i%7 == 0 {
			fp = long + fp
		}
		if prev := claim(user, key, fp); prev != "" {
			t.Fatalf("first claim of %s/%s = %q, want it free", user, key, prev)
		}
		if prev := claim(user, key, "other"); prev != fp {
			t.Fatalf("second claim of %s/%s = %q, want %q", user, key, prev, fp)
		}
	}
}

// TestMemoryClaimsTTL: a claim lives at least one TTL, and is gone after two.
func TestMemoryClaimsTTL(t *testing.T) {
	now := time.Now()
	c := NewMemoryClaims(0).(*memoryClaims)
	c.now = func() time.Time { return now }
	steps := []struct {
		after time.Duration
		fp    string
		want  string
	}{
		{0, "a", ""},
		{time.Hour, "b", "a"},
		{persistence.IdemTTL - time.Minute, "b", "a"},
		{persistence.IdemTTL + 2*time.Minute, "b", "a"},
		{2*persistence.IdemTTL + 3*time.Minute, "b", ""},
	}
	for _, st := range steps {
		c.now = func() time.Time { return now.Add(st.after) }
		if got, err := c.Claim(t.Context(), "u", "k", st.fp); err != nil || got != st.want {
			t.Errorf("Claim after %v = %q, %v; want %q", st.after, got, err, st.want)
		}
	}
}
