package edge

import (
	"context"
	"net/http"
	"time"

	bookdv1 "github.com/bookd/bookd/messages/bookd/v1"
)

// HoldRequest is the body of POST /v1/holds.
type HoldRequest struct {
	ResourceID string `json:"resource_id"`
	// From and To are dates (night slots), RFC 3339 times (minute slots), or
	// omitted (a single slot).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Quantity is the number of units per slot; 1 when omitted.
	Quantity *int64 `json:"quantity,omitempty"`
}

// resourceKind is the cluster kind of resource actors.
const resourceKind = "resource"

// maxQuantity bounds a hold's quantity (capacity is an int32 anyway).
const maxQuantity = 1_000_000

// decodeHoldRequest parses and checks a POST /v1/holds body. The slot range
// is checked by the resource, which knows its slot unit.
func decodeHoldRequest(body []byte) (HoldRequest, *Problem) {
	req, ok := decodeHoldRequestFast(body)
	if !ok {
		if p := unmarshalStrict(body, &req); p != nil {
			return HoldRequest{}, p
		}
	}
	if p := req.validate(); p != nil {
		return HoldRequest{}, p
	}
	return req, nil
}

func (req *HoldRequest) validate() *Problem {
	switch {
	case req.ResourceID == "":
		return invalidField("resource_id", "is required")
	case !validID(req.ResourceID):
		return invalidField("resource_id", "is not a resource id (lowercase letters, digits and dashes)")
	case req.Quantity == nil:
		one := int64(1)
		req.Quantity = &one
	case *req.Quantity < 1:
		return invalidField("quantity", "must be at least 1")
	case *req.Quantity > maxQuantity:
		return invalidField("quantity", "is too large")
	}
	if len(req.From) > 64 {
		return invalidField("from", "is too long")
	}
	if len(req.To) > 64 {
		return invalidField("to", "is too long")
	}
	return nil
}

// HoldJSON is a hold as the API shows it.
type HoldJSON struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id"`
	Status     string `json:"status"`
	Quantity   uint32 `json:"quantity"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	ExpiresAt  string `json:"expires_at,omitempty"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
}

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(timeLayout) }

func holdJSON(h *bookdv1.Hold) HoldJSON {
	j := HoldJSON{
		ID:         h.GetHoldId(),
		ResourceID: h.GetResourceId(),
		Status:     h.GetStatus().APIName(),
		Quantity:   h.GetQuantity(),
		From:       h.GetFrom(),
		To:         h.GetTo(),
		CreatedAt:  msTime(h.GetCreatedAtMs()),
		UpdatedAt:  msTime(h.GetUpdatedAtMs()),
	}
	if h.GetStatus() == bookdv1.HoldStatus_HOLD_STATUS_HELD || h.GetStatus() == bookdv1.HoldStatus_HOLD_STATUS_EXPIRED {
		j.ExpiresAt = msTime(h.GetExpiresAtMs())
	}
	return j
}

// handlePlaceHold is POST /v1/holds.
// The hold records its owner; the hold id is derived from the owner and the
// Idempotency-Key (see idempotency.go for the whole design).
func (s *Server) handlePlaceHold(w http.ResponseWriter, r *http.Request) {
	key, p := idempotencyKey(r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	who := principal(r)
	body, p := s.readBody(w, r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	req, p := decodeHoldRequest(body)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	// One deadline for the whole request: the key's claim and the resource.
	// In-process claims take no time and no context, so only claims kept
	// elsewhere (Redis) get a context with the deadline: a context timer per
	// request was a few percent of a sale's CPU.
	ctx := r.Context()
	deadline := time.Now().Add(s.cfg.RequestTimeout)
	var fp string
	if key != "" {
		fp = idemFingerprint(r, body)
		prev, err := s.claim(ctx, deadline, who.UserID, key, fp)
		if err != nil {
			s.log.Error("claim idempotency key", "error", err)
			writeProblem(w, r, newProblem(probUnavailable, "the Idempotency-Key could not be checked; retry"))
			return
		}
		if prev != "" && prev != fp {
			writeProblem(w, r, newProblem(probIdempotency, "the Idempotency-Key %q was used with another request", key))
			return
		}
	}
	// The command and the Location field's value in one allocation.
	parts := new(struct {
		cmd      bookdv1.PlaceHold
		location [1]string
	})
	cmd := &parts.cmd
	cmd.HoldId = newHoldID(req.ResourceID, who.UserID, key)
	cmd.From, cmd.To, cmd.Quantity = req.From, req.To, uint32(*req.Quantity)
	cmd.Owner, cmd.Fingerprint = who.UserID, fp
	reply, p := s.holdCommand(ctx, time.Until(deadline), req.ResourceID, cmd)
	if p != nil {
		if p.Status == http.StatusNotFound {
			// The body named a resource that does not exist.
			p = invalidField("resource_id", "no resource has this id")
		}
		writeProblem(w, r, p)
		return
	}
	parts.location[0] = "/v1/holds/" + reply.GetHoldId()
	w.Header()["Location"] = parts.location[:] // canonical: no Set needed
	writeHold(w, http.StatusCreated, reply)
}

// handleHoldAction serves GET /v1/holds/{id} and POST /v1/holds/{id}/confirm
// and …/cancel.
func (s *Server) handleHoldAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	resourceID, ok := parseHoldID(id)
	if !ok {
		writeProblem(w, r, newProblem(probNotFound, "hold %q does not exist", id))
		return
	}
	// The resource answers another owner's hold as missing; admins see all.
	owner := principal(r).UserID
	if principal(r).admin() {
		owner = ""
	}
	var cmd any
	switch r.PathValue("action") {
	case "":
		cmd = &bookdv1.GetHold{HoldId: id, Owner: owner}
	case "confirm":
		cmd = &bookdv1.ConfirmHold{HoldId: id, Owner: owner}
	case "cancel":
		cmd = &bookdv1.CancelHold{HoldId: id, Owner: owner}
	default:
		writeProblem(w, r, newProblem(probNotFound, "no action %q on holds", r.PathValue("action")))
		return
	}
	reply, p := s.holdCommand(r.Context(), s.cfg.RequestTimeout, resourceID, cmd)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	writeHold(w, http.StatusOK, reply)
}

// claim claims an Idempotency-Key of POST /v1/holds before deadline.
func (s *Server) claim(ctx context.Context, deadline time.Time, userID, key, fp string) (string, error) {
	if _, local := s.cfg.Claims.(*memoryClaims); !local {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	return s.cfg.Claims.Claim(ctx, userID, key, fp)
}

// holdCommand sends a hold command to its resource, waiting at most
// timeout, and unwraps the reply.
func (s *Server) holdCommand(ctx context.Context, timeout time.Duration, resourceID string, cmd any) (*bookdv1.Hold, *Problem) {
	res, err := s.actors.RequestWithin(ctx, timeout, resourceKind, resourceID, cmd)
	if err != nil {
		s.log.Warn("resource request failed", "resource_id", resourceID, "error", err)
		return nil, errorProblem(err)
	}
	reply, ok := res.(*bookdv1.HoldReply)
	if !ok {
		s.log.Error("unexpected reply", "resource_id", resourceID, "type", typeName(res))
		return nil, newProblem(probInternal, "internal error")
	}
	if reply.GetError() != nil {
		return nil, actorProblem(reply.GetError())
	}
	return reply.GetHold(), nil
}
