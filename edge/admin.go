package edge

import (
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/bookd/bookd/persistence"
)

// The catalog write routes under /v1/admin. They are open in this version;
// authentication closes them.

// ProviderRequest is the body of POST /v1/admin/providers.
type ProviderRequest struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
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
	if req.ID == "" {
		req.ID = newID("prv")
	}
	return persistence.Provider{ID: req.ID, Name: req.Name}, nil
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
	if p := checkName("name", req.Name); p != nil {
		return persistence.Listing{}, p
	}
	if p := checkName("city", req.City); p != nil {
		return persistence.Listing{}, p
	}
	if _, err := time.LoadLocation(req.TimeZone); err != nil || req.TimeZone == "" || req.TimeZone == "Local" {
		return persistence.Listing{}, invalidField("time_zone", "must be an IANA time zone name such as Europe/Lisbon")
	}
	if len(req.Attributes) > maxAttributes {
		return persistence.Listing{}, invalidField("attributes", "has more than 50 entries")
	}
	for k, v := range req.Attributes {
		if k == "" || len(k) > 64 || len(v) > 1000 || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return persistence.Listing{}, invalidField("attributes", "keys must be 1 to 64 bytes and values at most 1000 bytes of UTF-8")
		}
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
			if err := s.store.CreateProvider(r.Context(), pr); err != nil {
				writeProblem(w, r, s.createProblem(err, "provider", pr.ID, ""))
				return
			}
			got, err := s.store.GetProvider(r.Context(), pr.ID)
			if err != nil {
				s.internal(w, r, "read provider", err)
				return
			}
			writeJSON(w, http.StatusCreated, map[string]string{"id": got.ID, "name": got.Name})
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
			if err := s.store.CreateListing(r.Context(), l); err != nil {
				writeProblem(w, r, s.createProblem(err, "listing", l.ID, "provider_id"))
				return
			}
			w.Header().Set("Location", "/v1/listings/"+l.ID)
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
			if err := s.store.CreateResource(r.Context(), res); err != nil {
				if errors.Is(err, persistence.ErrNotFound) {
					writeProblem(w, r, newProblem(probNotFound, "listing %q does not exist", listingID))
					return
				}
				writeProblem(w, r, s.createProblem(err, "resource", res.ID, ""))
				return
			}
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
