package edge

import (
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/bookd/bookd/persistence"
)

// The catalog write routes under /v1/admin, for providers and admins. A
// provider manages only the providers it owns and their listings and
// resources; an admin manages everything. Every change goes to the audit
// log.

// ProviderRequest is the body of POST /v1/admin/providers. OwnerID is the
// provider user who manages it: set by admins; a provider's own request
// always owns what it creates.
type ProviderRequest struct {
	ID      string `json:"id,omitempty"`
	Name    string `json:"name"`
	OwnerID string `json:"owner_id,omitempty"`
}

// ListingPatch is the body of PATCH /v1/admin/listings/{id}: the fields to
// change.
type ListingPatch struct {
	Name       *string            `json:"name,omitempty"`
	City       *string            `json:"city,omitempty"`
	TimeZone   *string            `json:"time_zone,omitempty"`
	Attributes *map[string]string `json:"attributes,omitempty"`
}

// ListingRequest is the body of POST /v1/admin/listings.
type ListingRequest struct {
	ID         string            `json:"id,omitempty"`
	ProviderID string            `json:"provider_id"`
	Kind       string            `json:"kind"`
	Name       string            `json:"name"`
	City       string            `json:"city"`
	TimeZone   string            `json:"time_zone"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// ResourceRequest is the body of POST /v1/admin/listings/{id}/resources.
type ResourceRequest struct {
	ID       string   `json:"id,omitempty"`
	Name     string   `json:"name"`
	Slot     SlotJSON `json:"slot"`
	Capacity int      `json:"capacity"`
	// HoldTTLSeconds is how long holds last; 600 when omitted.
	HoldTTLSeconds *int64 `json:"hold_ttl_seconds,omitempty"`
}

const (
	maxNameLen       = 200
	maxAttributes    = 50
	maxCapacity      = 1_000_000
	defaultHoldTTL   = 10 * time.Minute
	maxHoldTTLSecond = 24 * 3600
)

func checkName(field, v string) *Problem {
	switch {
	case v == "":
		return invalidField(field, "is required")
	case len(v) > maxNameLen || !utf8.ValidString(v):
		return invalidField(field, "must be valid UTF-8 of at most 200 bytes")
	}
	return nil
}

func checkOptionalID(v string) *Problem {
	if v != "" && !validID(v) {
		return invalidField("id", "must be lowercase letters, digits and dashes, at most 64, not starting with a dash")
	}
	return nil
}

// decodeProviderRequest parses and checks a provider body.
func decodeProviderRequest(body []byte) (persistence.Provider, *Problem) {
	var req ProviderRequest
	if p := unmarshalStrict(body, &req); p != nil {
		return persistence.Provider{}, p
	}
	if p := checkOptionalID(req.ID); p != nil {
		return persistence.Provider{}, p
	}
	if p := checkName("name", req.Name); p != nil {
		return persistence.Provider{}, p
	}
	if req.OwnerID != "" && !validID(req.OwnerID) {
		return persistence.Provider{}, invalidField("owner_id", "is not a user id")
	}
	if req.ID == "" {
		req.ID = newID("prv")
	}
	return persistence.Provider{ID: req.ID, Name: req.Name, OwnerID: req.OwnerID}, nil
}

// decodeListingPatch parses and checks a listing patch over l.
func decodeListingPatch(body []byte, l persistence.Listing) (persistence.Listing, *Problem) {
	var req ListingPatch
	if p := unmarshalStrict(body, &req); p != nil {
		return l, p
	}
	if req.Name != nil {
		l.Name = *req.Name
	}
	if req.City != nil {
		l.City = *req.City
	}
	if req.TimeZone != nil {
		l.TimeZone = *req.TimeZone
	}
	if req.Attributes != nil {
		l.Attributes = *req.Attributes
	}
	return l, checkListingFields(l.Name, l.City, l.TimeZone, l.Attributes)
}

// checkListingFields checks the changeable fields of a listing.
func checkListingFields(name, city, tz string, attrs map[string]string) *Problem {
	if p := checkName("name", name); p != nil {
		return p
	}
	if p := checkName("city", city); p != nil {
		return p
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
		return invalidField("time_zone", "must be an IANA time zone name such as Europe/Lisbon")
	}
	if len(attrs) > maxAttributes {
		return invalidField("attributes", "has more than 50 entries")
	}
	for k, v := range attrs {
		if k == "" || len(k) > 64 || len(v) > 1000 || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return invalidField("attributes", "keys must be 1 to 64 bytes and values at most 1000 bytes of UTF-8")
		}
	}
	return nil
}

// decodeListingRequest parses and checks a listing body.
func decodeListingRequest(body []byte) (persistence.Listing, *Problem) {
	var req ListingRequest
	if p := unmarshalStrict(body, &req); p != nil {
		return persistence.Listing{}, p
	}
	if p := checkOptionalID(req.ID); p != nil {
		return persistence.Listing{}, p
	}
	switch {
	case req.ProviderID == "":
		return persistence.Listing{}, invalidField("provider_id", "is required")
	case !validID(req.ProviderID):
		return persistence.Listing{}, invalidField("provider_id", "is not a provider id")
	case !persistence.ListingKind(req.Kind).Valid():
		return persistence.Listing{}, invalidField("kind", "must be one of accommodation, restaurant, transport, service, event")
	}
	if p := checkListingFields(req.Name, req.City, req.TimeZone, req.Attributes); p != nil {
		return persistence.Listing{}, p
	}
	if req.ID == "" {
		req.ID = newID("lst")
	}
	return persistence.Listing{ID: req.ID, ProviderID: req.ProviderID, Kind: persistence.ListingKind(req.Kind),
		Name: req.Name, City: req.City, TimeZone: req.TimeZone, Attributes: req.Attributes}, nil
}

// decodeResourceRequest parses and checks a resource body for listingID.
func decodeResourceRequest(body []byte, listingID string) (persistence.Resource, *Problem) {
	var req ResourceRequest
	if p := unmarshalStrict(body, &req); p != nil {
		return persistence.Resource{}, p
	}
	if p := checkOptionalID(req.ID); p != nil {
		return persistence.Resource{}, p
	}
	if p := checkName("name", req.Name); p != nil {
		return persistence.Resource{}, p
	}
	unit := persistence.SlotUnit(req.Slot.Unit)
	switch unit {
	case persistence.SlotNight, persistence.SlotSingle:
		if req.Slot.Minutes != 0 {
			return persistence.Resource{}, invalidField("slot.minutes", "must be omitted for "+req.Slot.Unit+" slots")
		}
	case persistence.SlotMinutes:
		if m := req.Slot.Minutes; m < 5 || m > 1440 || 1440%m != 0 {
			return persistence.Resource{}, invalidField("slot.minutes", "must divide a day (1440) and be at least 5")
		}
	default:
		return persistence.Resource{}, invalidField("slot.unit", "must be one of night, minutes, single")
	}
	if req.Capacity < 1 || req.Capacity > maxCapacity {
		return persistence.Resource{}, invalidField("capacity", "must be from 1 to 1000000")
	}
	ttl := defaultHoldTTL
	if req.HoldTTLSeconds != nil {
		if s := *req.HoldTTLSeconds; s < 1 || s > maxHoldTTLSecond {
			return persistence.Resource{}, invalidField("hold_ttl_seconds", "must be from 1 to 86400")
		}
		ttl = time.Duration(*req.HoldTTLSeconds) * time.Second
	}
	if req.ID == "" {
		req.ID = newID("res")
	}
	return persistence.Resource{ID: req.ID, ListingID: listingID, Name: req.Name, Unit: unit,
		SlotMinutes: req.Slot.Minutes, Capacity: req.Capacity, HoldTTL: ttl}, nil
}

func (s *Server) handleCreateProvider(w http.ResponseWriter, r *http.Request) {
	body, p := s.readBody(w, r)
	if p == nil {
		var pr persistence.Provider
		if pr, p = decodeProviderRequest(body); p == nil {
			if who := principal(r); !who.admin() {
				if pr.OwnerID != "" && pr.OwnerID != who.UserID {
					writeProblem(w, r, newProblem(probForbidden, "only admins create providers for someone else (owner_id)"))
					return
				}
				pr.OwnerID = who.UserID
			}
			if err := s.store.CreateProvider(r.Context(), pr); err != nil {
				writeProblem(w, r, s.createProblem(err, "provider", pr.ID, ""))
				return
			}
			got, err := s.store.GetProvider(r.Context(), pr.ID)
			if err != nil {
				s.internal(w, r, "read provider", err)
				return
			}
			s.audit(r, "create provider", got.ID)
			w.Header().Set("Location", "/v1/admin/providers/"+got.ID)
			writeJSON(w, http.StatusCreated, map[string]string{"id": got.ID, "name": got.Name, "owner_id": got.OwnerID})
			return
		}
	}
	writeProblem(w, r, p)
}

func (s *Server) handleCreateListing(w http.ResponseWriter, r *http.Request) {
	body, p := s.readBody(w, r)
	if p == nil {
		var l persistence.Listing
		if l, p = decodeListingRequest(body); p == nil {
			if p := s.ownsProvider(r, l.ProviderID); p != nil {
				writeProblem(w, r, p)
				return
			}
			if err := s.store.CreateListing(r.Context(), l); err != nil {
				writeProblem(w, r, s.createProblem(err, "listing", l.ID, "provider_id"))
				return
			}
			s.audit(r, "create listing", l.ID)
			w.Header().Set("Location", "/v1/listings/"+l.ID)
			w.Header().Set("ETag", listingETag(1))
			writeJSON(w, http.StatusCreated, listingJSON(l))
			return
		}
	}
	writeProblem(w, r, p)
}

func (s *Server) handleCreateResource(w http.ResponseWriter, r *http.Request) {
	listingID := r.PathValue("id")
	if !validID(listingID) {
		writeProblem(w, r, newProblem(probNotFound, "listing %q does not exist", listingID))
		return
	}
	body, p := s.readBody(w, r)
	if p == nil {
		var res persistence.Resource
		if res, p = decodeResourceRequest(body, listingID); p == nil {
			if _, p := s.ownsListing(r, listingID); p != nil {
				writeProblem(w, r, p)
				return
			}
			if err := s.store.CreateResource(r.Context(), res); err != nil {
				if errors.Is(err, persistence.ErrNotFound) {
					writeProblem(w, r, newProblem(probNotFound, "listing %q does not exist", listingID))
					return
				}
				writeProblem(w, r, s.createProblem(err, "resource", res.ID, ""))
				return
			}
			s.audit(r, "create resource", res.ID)
			w.Header().Set("Location", "/v1/resources/"+res.ID)
			writeJSON(w, http.StatusCreated, resourceJSON(res))
			return
		}
	}
	writeProblem(w, r, p)
}

// createProblem maps a store error on create: a taken id is a conflict, a
// missing parent names the field that pointed at it.
func (s *Server) createProblem(err error, what, id, parentField string) *Problem {
	switch {
	case errors.Is(err, persistence.ErrExists):
		p := newProblem(probConflict, "a %s with id %q exists already", what, id)
		p.Errors = []FieldProblem{{Field: "id", Detail: "is taken"}}
		return p
	case errors.Is(err, persistence.ErrNotFound) && parentField != "":
		return invalidField(parentField, "does not exist")
	}
	s.log.Error("create "+what, "error", err)
	return newProblem(probInternal, "internal error")
}

// ownsProvider checks that the principal may manage provider id, named by
// the request's provider_id: admins any, providers their own.
func (s *Server) ownsProvider(r *http.Request, id string) *Problem {
	who := principal(r)
	if who.admin() {
		return nil
	}
	pr, err := s.store.GetProvider(r.Context(), id)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return invalidField("provider_id", "does not exist")
	case err != nil:
		s.log.Error("read provider", "error", err)
		return newProblem(probInternal, "internal error")
	case pr.OwnerID != who.UserID:
		return newProblem(probForbidden, "provider %q is not yours", id)
	}
	return nil
}

// ownsListing reads listing id and checks that the principal may manage it.
func (s *Server) ownsListing(r *http.Request, id string) (persistence.Listing, *Problem) {
	l, err := s.store.GetListing(r.Context(), id)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return l, newProblem(probNotFound, "listing %q does not exist", id)
	case err != nil:
		s.log.Error("read listing", "error", err)
		return l, newProblem(probInternal, "internal error")
	}
	if p := s.ownsProvider(r, l.ProviderID); p != nil {
		if p.Status == http.StatusBadRequest {
			p = newProblem(probForbidden, "listing %q is not yours", id)
		}
		return l, p
	}
	return l, nil
}

// handleUpdateListing is PATCH /v1/admin/listings/{id}: If-Match with the
// listing's ETag is required; another version is 412.
func (s *Server) handleUpdateListing(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		writeProblem(w, r, newProblem(probNotFound, "listing %q does not exist", id))
		return
	}
	ifMatch := r.Header.Get("If-Match")
	if ifMatch == "" {
		writeProblem(w, r, newProblem(probPreconditionRequired, "send If-Match with the listing's ETag"))
		return
	}
	body, p := s.readBody(w, r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	l, p := s.ownsListing(r, id)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	version, ok := parseListingETag(ifMatch)
	if !ok || version != l.Version {
		writeProblem(w, r, newProblem(probPrecondition, "If-Match %s is not the current version %s", ifMatch, listingETag(l.Version)))
		return
	}
	next, p := decodeListingPatch(body, l)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	if err := s.store.UpdateListing(r.Context(), next, version); err != nil {
		writeProblem(w, r, errorProblem(err))
		return
	}
	s.audit(r, "update listing", id)
	w.Header().Set("ETag", listingETag(version+1))
	writeJSON(w, http.StatusOK, listingJSON(next))
}
