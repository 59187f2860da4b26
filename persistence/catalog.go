package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ListingKind is what a listing offers.
type ListingKind string

// The kinds of listing.
const (
	KindAccommodation ListingKind = "accommodation" // rooms by the night
	KindRestaurant    ListingKind = "restaurant"    // tables by the time slot
	KindTransport     ListingKind = "transport"     // seats on a trip
	KindService       ListingKind = "service"       // a provider's appointments
	KindEvent         ListingKind = "event"         // tickets for one event
)

// Valid reports whether k is one of the kinds above.
func (k ListingKind) Valid() bool {
	switch k {
	case KindAccommodation, KindRestaurant, KindTransport, KindService, KindEvent:
		return true
	}
	return false
}

// SlotUnit is how a resource's time is cut into bookable slots.
type SlotUnit string

// The slot units.
const (
	SlotNight   SlotUnit = "night"   // one calendar night in the listing's time zone
	SlotMinutes SlotUnit = "minutes" // fixed-length slots from local midnight
	SlotSingle  SlotUnit = "single"  // one slot only (a seat on one trip, one event)
)

// Provider owns listings.
type Provider struct {
	ID   string
	Name string
	// OwnerID is the user (a provider) that manages it; "" for none (an
	// admin's).
	OwnerID   string
	CreatedAt time.Time
}

// Listing is something customers browse: a hotel, a restaurant, a trip, …
type Listing struct {
	ID         string
	ProviderID string
	Kind       ListingKind
	Name       string
	City       string
	// TimeZone is an IANA name such as "Europe/Lisbon"; slots are cut in it.
	TimeZone   string
	Attributes map[string]string
	CreatedAt  time.Time
	// Version is 1 when created and grows by one with every update; the
	// edge's ETag is made of it.
	Version int64
}

// Resource is one bookable thing of a listing: a room, a table, a seat, a pool.
type Resource struct {
	ID        string
	ListingID string
	Name      string
	Unit      SlotUnit
	// SlotMinutes is the slot length for SlotMinutes (it divides 1440); 0 otherwise.
	SlotMinutes int
	// Capacity is the number of units per slot, at least 1.
	Capacity int
	// HoldTTL is how long a hold lasts before it expires.
	HoldTTL   time.Duration
	CreatedAt time.Time
}

// ListQuery selects a page of listings, ordered by id in byte order.
type ListQuery struct {
	// After is the id of the last listing of the previous page ("" for the first).
	After string
	// Limit is the page size, at least 1.
	Limit int
	// City and Kind filter when not empty.
	City string
	Kind ListingKind
}

// Catalog stores providers, listings and resources.
type Catalog interface {
	// CreateProvider returns ErrExists when the id is taken.
	CreateProvider(ctx context.Context, p Provider) error
	// GetProvider returns ErrNotFound when there is none.
	GetProvider(ctx context.Context, id string) (Provider, error)

	// CreateListing returns ErrExists when the id is taken and ErrNotFound when
	// its provider does not exist.
	CreateListing(ctx context.Context, l Listing) error
	// GetListing returns ErrNotFound when there is none.
	GetListing(ctx context.Context, id string) (Listing, error)
	// UpdateListing replaces the name, city, time zone and attributes of
	// listing l.ID when its version is ifVersion, and bumps the version. It
	// returns ErrNotFound when there is no such listing and ErrPrecondition
	// when its version is another.
	UpdateListing(ctx context.Context, l Listing, ifVersion int64) error
	// ListListings returns up to q.Limit listings with id > q.After, by id;
	// more is true when there are further ones.
	ListListings(ctx context.Context, q ListQuery) (page []Listing, more bool, err error)

	// CreateResource returns ErrExists when the id is taken and ErrNotFound
	// when its listing does not exist.
	CreateResource(ctx context.Context, r Resource) error
	// GetResource returns ErrNotFound when there is none.
	GetResource(ctx context.Context, id string) (Resource, error)
	// ListResources returns the resources of a listing, by id.
	ListResources(ctx context.Context, listingID string) ([]Resource, error)

	// IsEmpty reports whether the catalog has no provider yet (demo data goes
	// into an empty store only).
	IsEmpty(ctx context.Context) (bool, error)
}

// Validate reports the first field of l a store cannot keep.
func (l Listing) Validate() error {
	switch {
	case l.ID == "":
		return errors.New("empty id")
	case l.ProviderID == "":
		return errors.New("empty provider id")
	case !l.Kind.Valid():
		return fmt.Errorf("kind %q is not a listing kind", l.Kind)
	}
	return nil
}

// Validate reports the first field of r a store cannot keep: the slot
// settings must be consistent, the capacity at least 1.
func (r Resource) Validate() error {
	switch {
	case r.ID == "":
		return errors.New("empty id")
	case r.ListingID == "":
		return errors.New("empty listing id")
	case r.Capacity < 1:
		return fmt.Errorf("capacity is %d, want at least 1", r.Capacity)
	case r.HoldTTL < 0:
		return fmt.Errorf("hold TTL is %v, want >= 0", r.HoldTTL)
	}
	switch r.Unit {
	case SlotMinutes:
		if r.SlotMinutes < 1 || 1440%r.SlotMinutes != 0 {
			return fmt.Errorf("slot minutes is %d, want a divisor of 1440", r.SlotMinutes)
		}
	case SlotNight, SlotSingle:
		if r.SlotMinutes != 0 {
			return fmt.Errorf("slot minutes is %d for unit %q, want 0", r.SlotMinutes, r.Unit)
		}
	default:
		return fmt.Errorf("unit %q is not a slot unit", r.Unit)
	}
	return nil
}
