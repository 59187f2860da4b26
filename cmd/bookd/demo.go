package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/bookd/bookd/persistence"
)

// demoCatalog is what a newcomer finds on the first start: in two cities, a
// hotel with rooms, a restaurant with tables, a bus trip with seats, a
// concert with a standing pool of 5,000 and a barber's appointments.
func demoCatalog() ([]persistence.Provider, []persistence.Listing, []persistence.Resource) {
	providers := []persistence.Provider{
		{ID: "alfama-hospitality", Name: "Alfama Hospitality"},
		{ID: "tasca-do-chico", Name: "Tasca do Chico"},
		{ID: "spree-coaches", Name: "Spree Coaches"},
		{ID: "berlin-live", Name: "Berlin Live"},
		{ID: "kreuzberg-cuts", Name: "Kreuzberg Cuts"},
	}
	listings := []persistence.Listing{
		{ID: "hotel-alfama", ProviderID: "alfama-hospitality", Kind: persistence.KindAccommodation, Name: "Hotel Alfama",
			City: "Lisbon", TimeZone: "Europe/Lisbon", Attributes: map[string]string{"stars": "4", "check_in": "15:00", "check_out": "11:00"}},
		{ID: "tasca-do-chico", ProviderID: "tasca-do-chico", Kind: persistence.KindRestaurant, Name: "Tasca do Chico",
			City: "Lisbon", TimeZone: "Europe/Lisbon", Attributes: map[string]string{"cuisine": "portuguese", "fado": "nightly"}},
		{ID: "bus-berlin-hamburg", ProviderID: "spree-coaches", Kind: persistence.KindTransport, Name: "Berlin → Hamburg, 18 Dec 2026 08:00",
			City: "Berlin", TimeZone: "Europe/Berlin", Attributes: map[string]string{"departs": "2026-12-18T08:00:00+01:00", "arrives": "2026-12-18T11:15:00+01:00"}},
		{ID: "velodrom-concert", ProviderID: "berlin-live", Kind: persistence.KindEvent, Name: "Winter Concert at the Velodrom",
			City: "Berlin", TimeZone: "Europe/Berlin", Attributes: map[string]string{"doors": "2026-12-19T19:00:00+01:00"}},
		{ID: "kreuzberg-cuts", ProviderID: "kreuzberg-cuts", Kind: persistence.KindService, Name: "Kreuzberg Cuts",
			City: "Berlin", TimeZone: "Europe/Berlin", Attributes: map[string]string{"service": "haircut", "minutes": "30"}},
	}
	ttl := 10 * time.Minute
	var resources []persistence.Resource
	for _, room := range []string{"101", "102", "201", "202"} {
		resources = append(resources, persistence.Resource{ID: "hotel-alfama-room-" + room, ListingID: "hotel-alfama",
			Name: "Room " + room, Unit: persistence.SlotNight, Capacity: 1, HoldTTL: ttl})
	}
	resources = append(resources, persistence.Resource{ID: "hotel-alfama-standard", ListingID: "hotel-alfama",
		Name: "Standard double (pool of 20)", Unit: persistence.SlotNight, Capacity: 20, HoldTTL: ttl})
	for i := 1; i <= 6; i++ {
		resources = append(resources, persistence.Resource{ID: fmt.Sprintf("tasca-table-%d", i), ListingID: "tasca-do-chico",
			Name: fmt.Sprintf("Table %d", i), Unit: persistence.SlotMinutes, SlotMinutes: 30, Capacity: 1, HoldTTL: ttl})
	}
	for i := 1; i <= 40; i++ {
		resources = append(resources, persistence.Resource{ID: fmt.Sprintf("bus-berlin-hamburg-seat-%02d", i), ListingID: "bus-berlin-hamburg",
			Name: fmt.Sprintf("Seat %d", i), Unit: persistence.SlotSingle, Capacity: 1, HoldTTL: ttl})
	}
	resources = append(resources, persistence.Resource{ID: "concert-standing", ListingID: "velodrom-concert",
		Name: "Standing (pool of 5,000)", Unit: persistence.SlotSingle, Capacity: 5000, HoldTTL: ttl})
	for _, who := range []string{"ana", "jonas"} {
		resources = append(resources, persistence.Resource{ID: "kreuzberg-cuts-" + who, ListingID: "kreuzberg-cuts",
			Name: "Appointment with " + who, Unit: persistence.SlotMinutes, SlotMinutes: 30, Capacity: 1, HoldTTL: ttl})
	}
	return providers, listings, resources
}

// loadDemo fills an empty store with the demo catalog and leaves a store
// that has anything alone.
func loadDemo(ctx context.Context, store persistence.Catalog, log *slog.Logger) error {
	empty, err := store.IsEmpty(ctx)
	if err != nil || !empty {
		return err
	}
	providers, listings, resources := demoCatalog()
	for _, p := range providers {
		if err := store.CreateProvider(ctx, p); err != nil {
			return err
		}
	}
	for _, l := range listings {
		if err := store.CreateListing(ctx, l); err != nil {
			return err
		}
	}
	for _, r := range resources {
		if err := store.CreateResource(ctx, r); err != nil {
			return err
		}
	}
	log.Info("demo data loaded", "listings", len(listings), "resources", len(resources))
	return nil
}
