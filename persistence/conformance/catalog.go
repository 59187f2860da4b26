package conformance

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

// created is a CreatedAt with nanoseconds and a zone other than UTC: stores
// must give back the same instant, in UTC, to the millisecond.
var created = time.Date(2026, 3, 14, 15, 9, 26, 535_897_932, time.FixedZone("UTC+1", 3600))

func testCatalog(t *testing.T, factory Factory) {
	t.Run("Providers", func(t *testing.T) { testProviders(t, fresh(t, factory)) })
	t.Run("Listings", func(t *testing.T) { testListings(t, fresh(t, factory)) })
	t.Run("Resources", func(t *testing.T) { testResources(t, fresh(t, factory)) })
	t.Run("ListListings", func(t *testing.T) { testListListings(t, fresh(t, factory)) })
	t.Run("IsEmpty", func(t *testing.T) { testIsEmpty(t, fresh(t, factory)) })
	t.Run("RejectsInvalid", func(t *testing.T) { testCatalogRejectsInvalid(t, fresh(t, factory)) })
	t.Run("CreatedAtStamped", func(t *testing.T) { testCreatedAtStamped(t, fresh(t, factory)) })
}

// sampleCatalog is one provider with one listing with one resource.
func sampleCatalog() (persistence.Provider, persistence.Listing, persistence.Resource) {
	p := persistence.Provider{ID: "prov-1", Name: "Hotel Group Ltd", CreatedAt: created}
	l := persistence.Listing{
		ID: "list-1", ProviderID: p.ID, Kind: persistence.KindAccommodation, Name: "Casa Azul",
		City: "Lisbon", TimeZone: "Europe/Lisbon",
		Attributes: map[string]string{"stars": "4", "wifi": "yes", "note": "vista \"mar\" ☀", "empty": ""},
		CreatedAt:  created.Add(time.Minute),
	}
	r := persistence.Resource{
		ID: "res-1", ListingID: l.ID, Name: "Room 101", Unit: persistence.SlotNight,
		Capacity: 1, HoldTTL: 15 * time.Minute, CreatedAt: created.Add(2 * time.Minute),
	}
	return p, l, r
}

func checkProvider(t *testing.T, got, want persistence.Provider) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || !sameTime(got.CreatedAt, want.CreatedAt) {
		t.Errorf("GetProvider(%q) = %+v, want %+v (CreatedAt in UTC)", want.ID, got, want)
	}
}

func checkListing(t *testing.T, got, want persistence.Listing) {
	t.Helper()
	// An empty and a nil Attributes are the same.
	if got.ID != want.ID || got.ProviderID != want.ProviderID || got.Kind != want.Kind || got.Name != want.Name ||
		got.City != want.City || got.TimeZone != want.TimeZone || !maps.Equal(got.Attributes, want.Attributes) ||
		!sameTime(got.CreatedAt, want.CreatedAt) {
		t.Errorf("GetListing(%q) = %+v, want %+v (CreatedAt in UTC)", want.ID, got, want)
	}
}

func checkResource(t *testing.T, got, want persistence.Resource) {
	t.Helper()
	if got.ID != want.ID || got.ListingID != want.ListingID || got.Name != want.Name || got.Unit != want.Unit ||
		got.SlotMinutes != want.SlotMinutes || got.Capacity != want.Capacity || got.HoldTTL != want.HoldTTL ||
		!sameTime(got.CreatedAt, want.CreatedAt) {
		t.Errorf("GetResource(%q) = %+v, want %+v (CreatedAt in UTC)", want.ID, got, want)
	}
}

func testProviders(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	p, _, _ := sampleCatalog()
	if _, err := s.GetProvider(ctx, p.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("GetProvider(%q) before create = %v, want ErrNotFound", p.ID, err)
	}
	if err := s.CreateProvider(ctx, p); err != nil {
		t.Fatalf("CreateProvider(%q) = %v, want nil", p.ID, err)
	}
	got, err := s.GetProvider(ctx, p.ID)
	if err != nil {
		t.Fatalf("GetProvider(%q) = %v, want nil", p.ID, err)
	}
	checkProvider(t, got, p)

	again := persistence.Provider{ID: p.ID, Name: "Someone Else", CreatedAt: created}
	if err := s.CreateProvider(ctx, again); !errors.Is(err, persistence.ErrExists) {
		t.Errorf("CreateProvider(%q) again = %v, want ErrExists", p.ID, err)
	}
	if got, err := s.GetProvider(ctx, p.ID); err != nil || got.Name != p.Name {
		t.Errorf("GetProvider(%q) after a failed create = %+v, %v, want name %q", p.ID, got, err, p.Name)
	}
	for _, id := range []string{"prov-2", "PROV-1", "prov-1 "} {
		if _, err := s.GetProvider(ctx, id); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("GetProvider(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func testListings(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	p, l, _ := sampleCatalog()
	if err := s.CreateListing(ctx, l); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("CreateListing(%q) without its provider = %v, want ErrNotFound", l.ID, err)
	}
	if _, err := s.GetListing(ctx, l.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("GetListing(%q) after a failed create = %v, want ErrNotFound", l.ID, err)
	}
	if err := s.CreateProvider(ctx, p); err != nil {
		t.Fatalf("CreateProvider(%q) = %v, want nil", p.ID, err)
	}

	bare := persistence.Listing{
		ID: "list-2", ProviderID: p.ID, Kind: persistence.KindRestaurant, Name: "Tasca",
		City: "Porto", TimeZone: "Europe/Lisbon", CreatedAt: created,
	}
	emptyAttrs := persistence.Listing{
		ID: "list-3", ProviderID: p.ID, Kind: persistence.KindEvent, Name: "Concert",
		City: "Porto", TimeZone: "Europe/Lisbon", Attributes: map[string]string{}, CreatedAt: created,
	}
	for _, want := range []persistence.Listing{l, bare, emptyAttrs} {
		if err := s.CreateListing(ctx, want); err != nil {
			t.Fatalf("CreateListing(%q) = %v, want nil", want.ID, err)
		}
		got, err := s.GetListing(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetListing(%q) = %v, want nil", want.ID, err)
		}
		checkListing(t, got, want)
	}

	dup := bare
	dup.ID = l.ID
	if err := s.CreateListing(ctx, dup); !errors.Is(err, persistence.ErrExists) {
		t.Errorf("CreateListing(%q) again = %v, want ErrExists", l.ID, err)
	}
	if got, err := s.GetListing(ctx, l.ID); err != nil {
		t.Errorf("GetListing(%q) after a failed create = %v, want nil", l.ID, err)
	} else {
		checkListing(t, got, l)
	}
	orphan := bare
	orphan.ID, orphan.ProviderID = "list-9", "prov-none"
	if err := s.CreateListing(ctx, orphan); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("CreateListing(%q) with provider %q = %v, want ErrNotFound", orphan.ID, orphan.ProviderID, err)
	}
	if _, err := s.GetListing(ctx, "list-none"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("GetListing(%q) = %v, want ErrNotFound", "list-none", err)
	}
}

func testResources(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	p, l, r := sampleCatalog()
	if err := s.CreateProvider(ctx, p); err != nil {
		t.Fatalf("CreateProvider(%q) = %v, want nil", p.ID, err)
	}
	if err := s.CreateResource(ctx, r); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("CreateResource(%q) without its listing = %v, want ErrNotFound", r.ID, err)
	}
	if err := s.CreateListing(ctx, l); err != nil {
		t.Fatalf("CreateListing(%q) = %v, want nil", l.ID, err)
	}
	if got, err := s.ListResources(ctx, l.ID); err != nil || len(got) != 0 {
		t.Errorf("ListResources(%q) before any = %v, %v, want none, nil", l.ID, got, err)
	}

	// Created out of id order; ListResources returns them by id.
	want := []persistence.Resource{
		{ID: "res-c", ListingID: l.ID, Name: "Table 3", Unit: persistence.SlotMinutes, SlotMinutes: 90, Capacity: 4, HoldTTL: 10 * time.Minute, CreatedAt: created},
		{ID: "res-a", ListingID: l.ID, Name: "Standard rooms", Unit: persistence.SlotNight, Capacity: 20, HoldTTL: 15 * time.Minute, CreatedAt: created},
		{ID: "res-b", ListingID: l.ID, Name: "Seat 12A", Unit: persistence.SlotSingle, Capacity: 1, HoldTTL: 90 * time.Second, CreatedAt: created},
		{ID: "res-d", ListingID: l.ID, Name: "Standing", Unit: persistence.SlotSingle, Capacity: 5000, HoldTTL: 1500 * time.Millisecond, CreatedAt: created},
	}
	for _, r := range want {
		if err := s.CreateResource(ctx, r); err != nil {
			t.Fatalf("CreateResource(%q) = %v, want nil", r.ID, err)
		}
		got, err := s.GetResource(ctx, r.ID)
		if err != nil {
			t.Fatalf("GetResource(%q) = %v, want nil", r.ID, err)
		}
		checkResource(t, got, r)
	}

	dup := want[1]
	dup.Name = "Other"
	if err := s.CreateResource(ctx, dup); !errors.Is(err, persistence.ErrExists) {
		t.Errorf("CreateResource(%q) again = %v, want ErrExists", dup.ID, err)
	}
	orphan := want[1]
	orphan.ID, orphan.ListingID = "res-z", "list-none"
	if err := s.CreateResource(ctx, orphan); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("CreateResource(%q) with listing %q = %v, want ErrNotFound", orphan.ID, orphan.ListingID, err)
	}
	if _, err := s.GetResource(ctx, "res-none"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("GetResource(%q) = %v, want ErrNotFound", "res-none", err)
	}

	got, err := s.ListResources(ctx, l.ID)
	if err != nil {
		t.Fatalf("ListResources(%q) = %v, want nil", l.ID, err)
	}
	slices.SortFunc(want, func(a, b persistence.Resource) int { return cmp.Compare(a.ID, b.ID) })
	if len(got) != len(want) {
		t.Fatalf("ListResources(%q) = %d resources, want %d", l.ID, len(got), len(want))
	}
	for i := range want {
		checkResource(t, got[i], want[i])
	}
	if got, err := s.ListResources(ctx, "list-none"); err != nil || len(got) != 0 {
		t.Errorf("ListResources(%q) = %v, %v, want none, nil", "list-none", got, err)
	}
}

func testListListings(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	if page, more, err := s.ListListings(ctx, persistence.ListQuery{Limit: 10}); err != nil || len(page) != 0 || more {
		t.Errorf("ListListings(Limit 10) on an empty store = %d listings, %v, %v, want 0, false, nil", len(page), more, err)
	}
	for _, p := range []string{"prov-a", "prov-b"} {
		if err := s.CreateProvider(ctx, persistence.Provider{ID: p, Name: p, CreatedAt: created}); err != nil {
			t.Fatalf("CreateProvider(%q) = %v, want nil", p, err)
		}
	}
	cities := []string{"Lisbon", "Porto", "Faro"}
	kinds := []persistence.ListingKind{persistence.KindAccommodation, persistence.KindRestaurant, persistence.KindTransport, persistence.KindService, persistence.KindEvent}
	var all []persistence.Listing
	// Created in an order unlike the id order.
	for _, i := range []int{17, 3, 22, 0, 9, 14, 5, 21, 1, 11, 19, 7, 2, 13, 20, 8, 16, 4, 12, 18, 6, 10, 15} {
		l := persistence.Listing{
			ID: fmt.Sprintf("listing-%02d", i), ProviderID: []string{"prov-a", "prov-b"}[i%2],
			Kind: kinds[i%len(kinds)], Name: fmt.Sprint("Listing ", i), City: cities[i%len(cities)],
			TimeZone: "Europe/Lisbon", Attributes: map[string]string{"i": fmt.Sprint(i)}, CreatedAt: created,
		}
		if err := s.CreateListing(ctx, l); err != nil {
			t.Fatalf("CreateListing(%q) = %v, want nil", l.ID, err)
		}
		all = append(all, l)
	}
	slices.SortFunc(all, func(a, b persistence.Listing) int { return cmp.Compare(a.ID, b.ID) })

	filters := []struct {
		name string
		city string
		kind persistence.ListingKind
	}{
		{"all", "", ""},
		{"city", "Porto", ""},
		{"kind", "", persistence.KindRestaurant},
		{"city and kind", "Lisbon", persistence.KindAccommodation},
		{"unknown city", "Madrid", ""},
		{"city in other case", "porto", ""},
	}
	for _, f := range filters {
		var want []persistence.Listing
		for _, l := range all {
			if (f.city == "" || l.City == f.city) && (f.kind == "" || l.Kind == f.kind) {
				want = append(want, l)
			}
		}
		limits := []int{1, 2, 3, 7, max(1, len(want)), len(all), 1000}
		slices.Sort(limits)
		for _, limit := range slices.Compact(limits) {
			t.Run(fmt.Sprintf("%s limit %d", f.name, limit), func(t *testing.T) {
				walkListings(t, s, f.city, f.kind, limit, want)
			})
		}
	}

	// After need not be an existing id.
	page, more, err := s.ListListings(ctx, persistence.ListQuery{After: "listing-10x", Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != "listing-11" || page[1].ID != "listing-12" || !more {
		t.Errorf("ListListings(After %q, Limit 2) = %v, %v, %v, want listing-11 and listing-12, true, nil", "listing-10x", ids(page), more, err)
	}
	// The last page says there is no more.
	page, more, err = s.ListListings(ctx, persistence.ListQuery{After: "listing-20", Limit: 2})
	if err != nil || len(page) != 2 || more {
		t.Errorf("ListListings(After %q, Limit 2) = %v, %v, %v, want 2 listings, false, nil", "listing-20", ids(page), more, err)
	}
	for _, limit := range []int{0, -1} {
		if _, _, err := s.ListListings(ctx, persistence.ListQuery{Limit: limit}); err == nil {
			t.Errorf("ListListings(Limit %d) = nil error, want an error", limit)
		}
	}
}

// walkListings pages through the listings that match city and kind and
// checks it sees want, each once, in id order.
func walkListings(t *testing.T, s persistence.Store, city string, kind persistence.ListingKind, limit int, want []persistence.Listing) {
	t.Helper()
	var got []persistence.Listing
	q := persistence.ListQuery{Limit: limit, City: city, Kind: kind}
	for pages := 0; ; pages++ {
		if pages > len(want)+1 {
			t.Fatalf("ListListings(%+v): still more after %d pages", q, pages)
		}
		page, more, err := s.ListListings(t.Context(), q)
		if err != nil {
			t.Fatalf("ListListings(%+v) = %v, want nil", q, err)
		}
		if len(page) > limit {
			t.Fatalf("ListListings(%+v) = %d listings, want at most %d", q, len(page), limit)
		}
		if more && len(page) != limit {
			t.Errorf("ListListings(%+v) = %d listings and more, want a full page of %d", q, len(page), limit)
		}
		got = append(got, page...)
		if !more || len(page) == 0 {
			break
		}
		q.After = page[len(page)-1].ID
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("walking ListListings(city %q, kind %q, limit %d) = %v, want %v", city, kind, limit, ids(got), ids(want))
	}
	for i := range got {
		checkListing(t, got[i], want[i])
	}
}

func ids(ls []persistence.Listing) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

func testIsEmpty(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	if empty, err := s.IsEmpty(ctx); err != nil || !empty {
		t.Errorf("IsEmpty() on a new store = %v, %v, want true, nil", empty, err)
	}
	// Journal streams are not catalog.
	mustAppend(t, s, "resource/x", 0, payloads("e", 1), nil)
	if empty, err := s.IsEmpty(ctx); err != nil || !empty {
		t.Errorf("IsEmpty() after an Append = %v, %v, want true, nil", empty, err)
	}
	if err := s.CreateProvider(ctx, persistence.Provider{ID: "prov-1", Name: "P", CreatedAt: created}); err != nil {
		t.Fatalf("CreateProvider(%q) = %v, want nil", "prov-1", err)
	}
	if empty, err := s.IsEmpty(ctx); err != nil || empty {
		t.Errorf("IsEmpty() after CreateProvider = %v, %v, want false, nil", empty, err)
	}
}

// testCatalogRejectsInvalid: what Validate refuses is refused by the store,
// and none of it passes for ErrNotFound or ErrExists.
func testCatalogRejectsInvalid(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	if err := s.CreateProvider(ctx, persistence.Provider{ID: "p", Name: "P"}); err != nil {
		t.Fatalf("CreateProvider = %v", err)
	}
	listing := persistence.Listing{ID: "l", ProviderID: "p", Kind: persistence.KindRestaurant, Name: "L", City: "Porto", TimeZone: "Europe/Lisbon"}
	if err := s.CreateListing(ctx, listing); err != nil {
		t.Fatalf("CreateListing = %v", err)
	}
	if err := s.CreateProvider(ctx, persistence.Provider{Name: "no id"}); err == nil {
		t.Errorf("CreateProvider(no id) = nil, want an error")
	}

	badListings := map[string]persistence.Listing{
		"no id":       {ProviderID: "p", Kind: persistence.KindRestaurant},
		"no provider": {ID: "l2", Kind: persistence.KindRestaurant},
		"bad kind":    {ID: "l2", ProviderID: "p", Kind: "castle"},
	}
	for name, l := range badListings {
		if err := s.CreateListing(ctx, l); err == nil || errors.Is(err, persistence.ErrNotFound) || errors.Is(err, persistence.ErrExists) {
			t.Errorf("CreateListing(%s) = %v, want a validation error", name, err)
		}
	}

	ok := persistence.Resource{ID: "r", ListingID: "l", Name: "T1", Unit: persistence.SlotMinutes, SlotMinutes: 30, Capacity: 1, HoldTTL: time.Minute}
	badResources := map[string]func(r *persistence.Resource){
		"no id":                     func(r *persistence.Resource) { r.ID = "" },
		"no listing":                func(r *persistence.Resource) { r.ListingID = "" },
		"zero capacity":             func(r *persistence.Resource) { r.Capacity = 0 },
		"negative ttl":              func(r *persistence.Resource) { r.HoldTTL = -time.Second },
		"bad unit":                  func(r *persistence.Resource) { r.Unit = "fortnight" },
		"minutes not dividing":      func(r *persistence.Resource) { r.SlotMinutes = 7 },
		"minutes zero":              func(r *persistence.Resource) { r.SlotMinutes = 0 },
		"night with minutes":        func(r *persistence.Resource) { r.Unit = persistence.SlotNight },
		"single with minutes":       func(r *persistence.Resource) { r.Unit = persistence.SlotSingle },
		"minutes longer than a day": func(r *persistence.Resource) { r.SlotMinutes = 2880 },
	}
	for name, mutate := range badResources {
		r := ok
		mutate(&r)
		if err := s.CreateResource(ctx, r); err == nil || errors.Is(err, persistence.ErrNotFound) || errors.Is(err, persistence.ErrExists) {
			t.Errorf("CreateResource(%s) = %v, want a validation error", name, err)
		}
	}
	if err := s.CreateResource(ctx, ok); err != nil {
		t.Errorf("CreateResource(valid) = %v, want nil", err)
	}
}

// testCreatedAtStamped: a zero CreatedAt is the time of the create, in UTC.
func testCreatedAtStamped(t *testing.T, s persistence.Store) {
	before := time.Now()
	if err := s.CreateProvider(t.Context(), persistence.Provider{ID: "p", Name: "P"}); err != nil {
		t.Fatalf("CreateProvider = %v", err)
	}
	p, err := s.GetProvider(t.Context(), "p")
	if err != nil {
		t.Fatalf("GetProvider = %v", err)
	}
	if p.CreatedAt.Before(before.Add(-timeTolerance)) || p.CreatedAt.After(time.Now()) || p.CreatedAt.Location() != time.UTC {
		t.Errorf("GetProvider(p).CreatedAt = %v, want the time of the create in UTC", p.CreatedAt)
	}
}
