package edge

import (
	"cmp"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
	"github.com/bookd/bookd/persistence"
)

// ListingJSON is a listing as the API shows it.
type ListingJSON struct {
	ID         string            `json:"id"`
	ProviderID string            `json:"provider_id"`
	Kind       string            `json:"kind"`
	Name       string            `json:"name"`
	City       string            `json:"city"`
	TimeZone   string            `json:"time_zone"`
	Attributes map[string]string `json:"attributes"`
	Resources  []ResourceJSON    `json:"resources,omitempty"`
}

// SlotJSON is a resource's slot unit.
type SlotJSON struct {
	Unit    string `json:"unit"`
	Minutes int    `json:"minutes,omitempty"`
}

// ResourceJSON is a resource as the API shows it.
type ResourceJSON struct {
	ID             string   `json:"id"`
	ListingID      string   `json:"listing_id"`
	Name           string   `json:"name"`
	Slot           SlotJSON `json:"slot"`
	Capacity       int      `json:"capacity"`
	HoldTTLSeconds int64    `json:"hold_ttl_seconds"`
}

func listingJSON(l persistence.Listing) ListingJSON {
	attrs := l.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	return ListingJSON{ID: l.ID, ProviderID: l.ProviderID, Kind: string(l.Kind), Name: l.Name, City: l.City, TimeZone: l.TimeZone, Attributes: attrs}
}

func resourceJSON(r persistence.Resource) ResourceJSON {
	return ResourceJSON{
		ID: r.ID, ListingID: r.ListingID, Name: r.Name,
		Slot:     SlotJSON{Unit: string(r.Unit), Minutes: r.SlotMinutes},
		Capacity: r.Capacity, HoldTTLSeconds: int64(r.HoldTTL / time.Second),
	}
}

const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// parseListQuery reads GET /v1/listings' query: limit, cursor, city, kind.
func parseListQuery(q map[string][]string) (persistence.ListQuery, *Problem) {
	out := persistence.ListQuery{Limit: defaultPageSize}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	for k := range q {
		switch k {
		case "limit", "cursor", "city", "kind":
		default:
			return out, invalidField(cmp.Or(k, "query"), "is not a known query parameter (limit, cursor, city, kind)")
		}
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return out, invalidField("limit", "must be an integer from 1 to 100")
		}
		out.Limit = n
	}
	if v := get("cursor"); v != "" {
		after, err := decodeCursor(v)
		if err != nil {
			return out, invalidField("cursor", "is not a cursor this API gave out")
		}
		out.After = after
	}
	out.City = get("city")
	if len(out.City) > 200 {
		return out, invalidField("city", "is too long")
	}
	if v := get("kind"); v != "" {
		if !persistence.ListingKind(v).Valid() {
			return out, invalidField("kind", "must be one of accommodation, restaurant, transport, service, event")
		}
		out.Kind = persistence.ListingKind(v)
	}
	return out, nil
}

// A listing's ETag is its version ("v3"): it changes with every update of
// the listing's own fields (resources have their own addresses).
func listingETag(version int64) string { return `"v` + strconv.FormatInt(version, 10) + `"` }

func parseListingETag(s string) (int64, bool) {
	v, ok := strings.CutPrefix(s, `"v`)
	v, ok2 := strings.CutSuffix(v, `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	// ETags compare as strings: "v01" is not "v1".
	return n, ok && ok2 && err == nil && n > 0 && listingETag(n) == s
}

func encodeCursor(afterID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("l1:" + afterID))
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 4 || string(b[:3]) != "l1:" || !validID(string(b[3:])) {
		return "", errors.New("bad cursor")
	}
	return string(b[3:]), nil
}

// handleListListings is GET /v1/listings.
func (s *Server) handleListListings(w http.ResponseWriter, r *http.Request) {
	q, p := parseListQuery(r.URL.Query())
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	page, more, err := s.store.ListListings(r.Context(), q)
	if err != nil {
		s.internal(w, r, "list listings", err)
		return
	}
	items := make([]ListingJSON, 0, len(page))
	for _, l := range page {
		items = append(items, listingJSON(l))
	}
	var next *string
	if more && len(page) > 0 {
		c := encodeCursor(page[len(page)-1].ID)
		next = &c
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

// handleGetListing is GET /v1/listings/{id}: the listing with its resources.
func (s *Server) handleGetListing(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		writeProblem(w, r, newProblem(probNotFound, "listing %q does not exist", id))
		return
	}
	l, err := s.store.GetListing(r.Context(), id)
	if errors.Is(err, persistence.ErrNotFound) {
		writeProblem(w, r, newProblem(probNotFound, "listing %q does not exist", id))
		return
	}
	if err != nil {
		s.internal(w, r, "get listing", err)
		return
	}
	rs, err := s.store.ListResources(r.Context(), id)
	if err != nil {
		s.internal(w, r, "list resources", err)
		return
	}
	j := listingJSON(l)
	w.Header().Set("ETag", listingETag(l.Version))
	j.Resources = make([]ResourceJSON, 0, len(rs))
	for _, res := range rs {
		j.Resources = append(j.Resources, resourceJSON(res))
	}
	writeJSON(w, http.StatusOK, j)
}

// handleGetResource is GET /v1/resources/{id}.
func (s *Server) handleGetResource(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	res, err := s.getResource(r, id)
	if err != nil {
		writeProblem(w, r, errorProblem(err))
		return
	}
	writeJSON(w, http.StatusOK, resourceJSON(res))
}

func (s *Server) getResource(r *http.Request, id string) (persistence.Resource, error) {
	if !validID(id) {
		return persistence.Resource{}, newProblem(probNotFound, "resource %q does not exist", id)
	}
	res, err := s.store.GetResource(r.Context(), id)
	if errors.Is(err, persistence.ErrNotFound) {
		return res, newProblem(probNotFound, "resource %q does not exist", id)
	}
	return res, err
}

// AvailabilityJSON is the answer of GET /v1/resources/{id}/availability.
type AvailabilityJSON struct {
	ResourceID string    `json:"resource_id"`
	Capacity   uint32    `json:"capacity"`
	Slots      []SlotUse `json:"slots"`
	Seq        uint64    `json:"seq"`
	Epoch      string    `json:"epoch"`
}

// SlotUse is one slot's availability.
type SlotUse struct {
	Start     string `json:"start,omitempty"`
	Free      uint32 `json:"free"`
	Held      uint32 `json:"held"`
	Confirmed uint32 `json:"confirmed"`
}

// handleAvailability is GET /v1/resources/{id}/availability?from=&to=.
func (s *Server) handleAvailability(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		writeProblem(w, r, newProblem(probNotFound, "resource %q does not exist", id))
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "from" && k != "to" {
			writeProblem(w, r, invalidField(cmp.Or(k, "query"), "is not a known query parameter (from, to)"))
			return
		}
	}
	from, to := q.Get("from"), q.Get("to")
	if (from == "") != (to == "") {
		field := "to"
		if from == "" {
			field = "from"
		}
		writeProblem(w, r, invalidField(field, "is required when the other end of the range is given"))
		return
	}
	res, err := s.actors.RequestWithin(r.Context(), s.cfg.RequestTimeout, resourceKind, id, &bookdv1.GetAvailability{From: from, To: to})
	if err != nil {
		s.log.Warn("availability request failed", "resource_id", id, "error", err)
		writeProblem(w, r, errorProblem(err))
		return
	}
	reply, ok := res.(*bookdv1.AvailabilityReply)
	if !ok {
		s.internal(w, r, "availability", errors.New("unexpected reply "+typeName(res)))
		return
	}
	if reply.GetError() != nil {
		writeProblem(w, r, actorProblem(reply.GetError()))
		return
	}
	a := reply.GetAvailability()
	out := AvailabilityJSON{ResourceID: a.GetResourceId(), Capacity: a.GetCapacity(), Seq: a.GetSeq(),
		Epoch: strconv.FormatUint(a.GetEpoch(), 16), Slots: make([]SlotUse, 0, len(a.GetSlots()))}
	for _, sl := range a.GetSlots() {
		out.Slots = append(out.Slots, SlotUse{Start: sl.GetStart(), Free: sl.GetFree(), Held: sl.GetHeld(), Confirmed: sl.GetConfirmed()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what, "method", r.Method, "path", r.URL.Path, "error", err)
	writeProblem(w, r, newProblem(probInternal, "internal error"))
}
