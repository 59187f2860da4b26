package edge

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/bookd/bookd/persistence"
)

// RegisterRequest is the body of POST /v1/auth/register. Role is customer
// (the default) or provider; admins come from `bookd admin create`.
type RegisterRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name,omitempty"`
	Role     string `json:"role,omitempty"`
}

// LoginRequest is the body of POST /v1/auth/login.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// RefreshRequest is the body of POST /v1/auth/refresh and /v1/auth/logout.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// UserJSON is a user as the API shows it.
type UserJSON struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt string `json:"created_at"`
}

// TokenJSON answers login and refresh.
type TokenJSON struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

const (
	minPasswordLen = 10
	maxPasswordLen = 256
)

func userJSON(u persistence.User) UserJSON {
	return UserJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role), CreatedAt: u.CreatedAt.UTC().Format(timeLayout)}
}

// normalEmail checks an email address and lowercases it.
func normalEmail(v string) (string, *Problem) {
	a, err := mail.ParseAddress(v)
	if v == "" {
		return "", invalidField("email", "is required")
	}
	if err != nil || a.Address != v || len(v) > 254 {
		return "", invalidField("email", "is not an email address")
	}
	return strings.ToLower(v), nil
}

// CheckPassword reports what is wrong with a new password ("" when
// nothing); `bookd admin create` uses it too.
func CheckPassword(pw string) string {
	switch n := utf8.RuneCountInString(pw); {
	case !utf8.ValidString(pw):
		return "must be valid UTF-8"
	case n < minPasswordLen:
		return "must be at least 10 characters"
	case len(pw) > maxPasswordLen:
		return "must be at most 256 bytes"
	}
	return ""
}

// decodeRegisterRequest parses and checks a registration.
func decodeRegisterRequest(body []byte) (RegisterRequest, *Problem) {
	var req RegisterRequest
	if p := unmarshalStrict(body, &req); p != nil {
		return req, p
	}
	email, p := normalEmail(req.Email)
	if p != nil {
		return req, p
	}
	req.Email = email
	if why := CheckPassword(req.Password); why != "" {
		return req, invalidField("password", why)
	}
	if len(req.Name) > maxNameLen || !utf8.ValidString(req.Name) {
		return req, invalidField("name", "must be valid UTF-8 of at most 200 bytes")
	}
	switch persistence.Role(req.Role) {
	case "":
		req.Role = string(persistence.RoleCustomer)
	case persistence.RoleCustomer, persistence.RoleProvider:
	default:
		return req, invalidField("role", "must be customer or provider")
	}
	return req, nil
}

// decodeLoginRequest parses a login; only the shape is checked.
func decodeLoginRequest(body []byte) (LoginRequest, *Problem) {
	var req LoginRequest
	if p := unmarshalStrict(body, &req); p != nil {
		return req, p
	}
	switch {
	case req.Email == "":
		return req, invalidField("email", "is required")
	case req.Password == "":
		return req, invalidField("password", "is required")
	case len(req.Password) > maxPasswordLen || len(req.Email) > 254:
		return req, newProblem(probBadLogin, "the email or password is wrong")
	}
	req.Email = strings.ToLower(req.Email)
	return req, nil
}

// decodeRefreshRequest parses a refresh or logout body.
func decodeRefreshRequest(body []byte) (RefreshRequest, *Problem) {
	var req RefreshRequest
	if p := unmarshalStrict(body, &req); p != nil {
		return req, p
	}
	if req.RefreshToken == "" {
		return req, invalidField("refresh_token", "is required")
	}
	if len(req.RefreshToken) > 200 {
		return req, newProblem(probBadLogin, "the refresh token is unknown")
	}
	return req, nil
}

// NewUserID returns a fresh user id.
func NewUserID() string { return newID("usr") }

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	req, ok := readRequest(s, w, r, decodeRegisterRequest)
	if !ok {
		return
	}
	u := persistence.User{ID: NewUserID(), Email: req.Email, Name: req.Name, Role: persistence.Role(req.Role),
		PasswordHash: s.cfg.Argon2.hashPassword(req.Password), CreatedAt: s.cfg.Now()}
	if err := s.store.CreateUser(r.Context(), u); err != nil {
		if errors.Is(err, persistence.ErrExists) {
			p := newProblem(probConflict, "an account with this email exists already")
			p.Errors = []FieldProblem{{Field: "email", Detail: "is taken"}}
			writeProblem(w, r, p)
			return
		}
		s.internal(w, r, "create user", err)
		return
	}
	w.Header().Set("Location", "/v1/me")
	writeJSON(w, http.StatusCreated, userJSON(u))
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	req, ok := readRequest(s, w, r, decodeLoginRequest)
	if !ok {
		return
	}
	u, err := s.store.GetUserByEmail(r.Context(), req.Email)
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		s.internal(w, r, "read user", err)
		return
	}
	hash := u.PasswordHash
	if err != nil {
		hash = s.dummyHash
	}
	if !checkPassword(hash, req.Password) || err != nil {
		writeProblem(w, r, newProblem(probBadLogin, "the email or password is wrong"))
		return
	}
	s.issueTokens(w, r, u, "")
}

// issueTokens answers with a new access token and a refresh token: a new
// family on login, the next of oldHash's family on refresh.
func (s *Server) issueTokens(w http.ResponseWriter, r *http.Request, u persistence.User, oldHash string) {
	refresh := "rt_" + randomToken()
	next := persistence.RefreshToken{Hash: hashSecret(refresh), Family: newID("fam"), UserID: u.ID,
		ExpiresAt: s.cfg.Now().Add(s.cfg.RefreshTTL), CreatedAt: s.cfg.Now()}
	if oldHash == "" {
		if err := s.store.CreateRefreshToken(r.Context(), next); err != nil {
			s.internal(w, r, "store refresh token", err)
			return
		}
	} else {
		spent, err := s.store.RotateRefreshToken(r.Context(), oldHash, next, s.cfg.Now())
		switch {
		case errors.Is(err, persistence.ErrTokenReused):
			s.log.Warn("refresh token reused: its family is revoked")
			writeProblem(w, r, newProblem(probBadLogin, "the refresh token was used already: every token of its login is revoked, log in again"))
			return
		case errors.Is(err, persistence.ErrNotFound):
			writeProblem(w, r, newProblem(probBadLogin, "the refresh token is unknown, expired or revoked"))
			return
		case err != nil:
			s.internal(w, r, "rotate refresh token", err)
			return
		}
		if u, err = s.store.GetUser(r.Context(), spent.UserID); err != nil {
			writeProblem(w, r, newProblem(probBadLogin, "the refresh token's user no longer exists"))
			return
		}
	}
	access, _, err := s.keys.sign(u)
	if err != nil {
		s.internal(w, r, "sign token", err)
		return
	}
	writeJSON(w, http.StatusOK, TokenJSON{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.cfg.AccessTTL.Seconds()), RefreshToken: refresh})
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	req, ok := readRequest(s, w, r, decodeRefreshRequest)
	if !ok {
		return
	}
	s.issueTokens(w, r, persistence.User{}, hashSecret(req.RefreshToken))
}

// handleLogout revokes the refresh token's family. Access tokens already
// given out stay valid until they expire (AccessTTL): they are not looked
// up per request.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	req, ok := readRequest(s, w, r, decodeRefreshRequest)
	if !ok {
		return
	}
	err := s.store.RevokeRefreshFamily(r.Context(), hashSecret(req.RefreshToken))
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		writeProblem(w, r, newProblem(probBadLogin, "the refresh token is unknown"))
	case err != nil:
		s.internal(w, r, "logout", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	u, err := s.store.GetUser(r.Context(), principal(r).UserID)
	if err != nil {
		writeProblem(w, r, unauthorized("the token's user no longer exists"))
		return
	}
	writeJSON(w, http.StatusOK, userJSON(u))
}

// handleJWKS publishes the public keys that verify access tokens.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if err := s.keys.reload(r.Context()); err != nil {
		s.internal(w, r, "jwks", err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, map[string]any{"keys": s.keys.jwks()})
}

// handleRotateSigningKey adds a signing key and retires the others.
func (s *Server) handleRotateSigningKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.keys.rotate(r.Context())
	if err != nil {
		s.internal(w, r, "rotate signing key", err)
		return
	}
	s.audit(r, "rotate signing key", k.ID)
	writeJSON(w, http.StatusCreated, map[string]string{"kid": k.ID})
}
