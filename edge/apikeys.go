package edge

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/bookd/bookd/persistence"
)

// APIKeyRequest is the body of POST /v1/api-keys.
type APIKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// APIKeyJSON is an API key as listed: never its secret.
type APIKeyJSON struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	CreatedAt string   `json:"created_at"`
	RevokedAt string   `json:"revoked_at,omitempty"`
	// Key is the whole key, shown once, when it is created.
	Key string `json:"key,omitempty"`
}

func apiKeyJSON(k persistence.APIKey) APIKeyJSON {
	j := APIKeyJSON{ID: k.ID, Name: k.Name, Scopes: k.Scopes, CreatedAt: k.CreatedAt.UTC().Format(timeLayout)}
	if j.Scopes == nil {
		j.Scopes = []string{}
	}
	if !k.RevokedAt.IsZero() {
		j.RevokedAt = k.RevokedAt.UTC().Format(timeLayout)
	}
	return j
}

// decodeAPIKeyRequest parses and checks a new API key.
func decodeAPIKeyRequest(body []byte) (APIKeyRequest, *Problem) {
	var req APIKeyRequest
	if p := unmarshalStrict(body, &req); p != nil {
		return req, p
	}
	if p := checkName("name", req.Name); p != nil {
		return req, p
	}
	if len(req.Scopes) == 0 {
		return req, invalidField("scopes", "must name at least one of catalog:write, holds:read, holds:write")
	}
	for i, sc := range req.Scopes {
		if !slices.Contains(apiKeyScopes, sc) {
			return req, invalidField("scopes["+strconv.Itoa(i)+"]", "must be one of catalog:write, holds:read, holds:write")
		}
	}
	slices.Sort(req.Scopes)
	req.Scopes = slices.Compact(req.Scopes)
	return req, nil
}

func (s *Server) handleCreateAPIKey(w http.ResponseWriter, r *http.Request) {
	req, ok := readRequest(s, w, r, decodeAPIKeyRequest)
	if !ok {
		return
	}
	secret := randomToken()
	k := persistence.APIKey{ID: newID("key"), OwnerID: principal(r).UserID, Name: req.Name, Hash: hashSecret(secret),
		Scopes: req.Scopes, CreatedAt: s.cfg.Now()}
	if err := s.store.CreateAPIKey(r.Context(), k); err != nil {
		s.internal(w, r, "create api key", err)
		return
	}
	s.audit(r, "create api key", k.ID)
	j := apiKeyJSON(k)
	j.Key = "bk_" + k.ID + "_" + secret
	w.Header().Set("Location", "/v1/api-keys")
	writeJSON(w, http.StatusCreated, j)
}

func (s *Server) handleListAPIKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := s.store.ListAPIKeys(r.Context(), principal(r).UserID)
	if err != nil {
		s.internal(w, r, "list api keys", err)
		return
	}
	items := make([]APIKeyJSON, 0, len(ks))
	for _, k := range ks {
		items = append(items, apiKeyJSON(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *Server) handleRevokeAPIKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.store.RevokeAPIKey(r.Context(), principal(r).UserID, id, s.cfg.Now())
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		writeProblem(w, r, newProblem(probNotFound, "you have no API key %q", id))
		return
	case err != nil:
		s.internal(w, r, "revoke api key", err)
		return
	}
	s.audit(r, "revoke api key", id)
	w.WriteHeader(http.StatusNoContent)
}

// AuditJSON is an audit log entry.
type AuditJSON struct {
	Seq     int64  `json:"seq"`
	At      string `json:"at"`
	ActorID string `json:"actor_id"`
	Role    string `json:"role"`
	Action  string `json:"action"`
	Target  string `json:"target"`
	Remote  string `json:"remote"`
}

// handleListAudit is GET /v1/admin/audit?cursor=&limit=.
func (s *Server) handleListAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			writeProblem(w, r, invalidField("limit", "must be an integer from 1 to 100"))
			return
		}
		limit = n
	}
	var after int64
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || !utf8.ValidString(v) {
			writeProblem(w, r, invalidField("cursor", "is not a cursor this API gave out"))
			return
		}
		after = n
	}
	page, more, err := s.store.ListAudit(r.Context(), after, limit)
	if err != nil {
		s.internal(w, r, "list audit", err)
		return
	}
	items := make([]AuditJSON, 0, len(page))
	for _, e := range page {
		items = append(items, AuditJSON{Seq: e.Seq, At: e.At.UTC().Format(timeLayout), ActorID: e.ActorID, Role: string(e.Role), Action: e.Action, Target: e.Target, Remote: e.Remote})
	}
	var next *string
	if more && len(page) > 0 {
		c := strconv.FormatInt(page[len(page)-1].Seq, 10)
		next = &c
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}
