package edge

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bookd/bookd/persistence"
)

func TestDecodeProviderRequest(t *testing.T) {
	tests := []struct {
		body      string
		want      persistence.Provider // ID "" means a generated id
		wantField string
	}{
		{body: `{"id":"alfama-hospitality","name":"Alfama Hospitality"}`, want: persistence.Provider{ID: "alfama-hospitality", Name: "Alfama Hospitality"}},
		{body: `{"name":"Tasca do Chico"}`, want: persistence.Provider{Name: "Tasca do Chico"}},
		{body: `{"name":"` + strings.Repeat("é", 100) + `"}`, want: persistence.Provider{Name: strings.Repeat("é", 100)}},
		{body: `{}`, wantField: "name"},
		{body: `{"name":""}`, wantField: "name"},
		{body: `{"name":"` + strings.Repeat("n", 201) + `"}`, wantField: "name"},
		{body: `{"id":"Bad","name":"x"}`, wantField: "id"},
		{body: `{"id":"-x","name":"x"}`, wantField: "id"},
		{body: `{"id":"` + strings.Repeat("a", 65) + `","name":"x"}`, wantField: "id"},
		{body: `{"name":"x","email":"a@b"}`, wantField: "email"},
		{body: `{"name":1}`, wantField: "name"},
		{body: `{"name":"x"`, wantField: "body"},
	}
	for _, tt := range tests {
		got, p := decodeProviderRequest([]byte(tt.body))
		if tt.wantField != "" {
			if f := problemField(p); p == nil || f != tt.wantField || p.Status != 400 {
				t.Errorf("decodeProviderRequest(%q) = %+v, %v, want a 400 naming %q", tt.body, got, describe(p), tt.wantField)
			}
			continue
		}
		if p != nil {
			t.Errorf("decodeProviderRequest(%q) = %v, want success", tt.body, describe(p))
			continue
		}
		if tt.want.ID == "" {
			if !strings.HasPrefix(got.ID, "prv-") || !validID(got.ID) {
				t.Errorf("decodeProviderRequest(%q) id = %q, want a generated prv-… id", tt.body, got.ID)
			}
			tt.want.ID = got.ID
		}
		if got != tt.want {
			t.Errorf("decodeProviderRequest(%q) = %+v, want %+v", tt.body, got, tt.want)
		}
	}
}

func TestDecodeListingRequest(t *testing.T) {
	ok := `"provider_id":"p","kind":"accommodation","name":"Hotel","city":"Lisbon","time_zone":"Europe/Lisbon"`
	manyAttrs := make([]string, 51)
	for i := range manyAttrs {
		manyAttrs[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	tests := []struct {
		body      string
		want      persistence.Listing // ID "" means a generated id
		wantField string
	}{
		{body: `{"id":"hotel-alfama",` + ok + `,"attributes":{"stars":"4"}}`,
			want: persistence.Listing{ID: "hotel-alfama", ProviderID: "p", Kind: persistence.KindAccommodation, Name: "Hotel", City: "Lisbon",
				TimeZone: "Europe/Lisbon", Attributes: map[string]string{"stars": "4"}}},
		{body: `{` + ok + `}`,
			want: persistence.Listing{ProviderID: "p", Kind: persistence.KindAccommodation, Name: "Hotel", City: "Lisbon", TimeZone: "Europe/Lisbon"}},
		{body: `{"provider_id":"p","kind":"event","name":"Concert","city":"Berlin","time_zone":"Europe/Berlin"}`,
			want: persistence.Listing{ProviderID: "p", Kind: persistence.KindEvent, Name: "Concert", City: "Berlin", TimeZone: "Europe/Berlin"}},
		{body: `{"provider_id":"p","kind":"service","name":"Cuts","city":"Berlin","time_zone":"UTC"}`,
			want: persistence.Listing{ProviderID: "p", Kind: persistence.KindService, Name: "Cuts", City: "Berlin", TimeZone: "UTC"}},

		{body: `{"kind":"accommodation","name":"Hotel","city":"Lisbon","time_zone":"Europe/Lisbon"}`, wantField: "provider_id"},
		{body: `{"provider_id":"P","kind":"accommodation","name":"Hotel","city":"Lisbon","time_zone":"Europe/Lisbon"}`, wantField: "provider_id"},
		{body: `{"provider_id":"p","name":"Hotel","city":"Lisbon","time_zone":"Europe/Lisbon"}`, wantField: "kind"},
		{body: `{"provider_id":"p","kind":"castle","name":"Hotel","city":"Lisbon","time_zone":"Europe/Lisbon"}`, wantField: "kind"},
		{body: `{"provider_id":"p","kind":"accommodation","city":"Lisbon","time_zone":"Europe/Lisbon"}`, wantField: "name"},
		{body: `{"provider_id":"p","kind":"accommodation","name":"Hotel","time_zone":"Europe/Lisbon"}`, wantField: "city"},
		{body: `{"provider_id":"p","kind":"accommodation","name":"Hotel","city":"Lisbon"}`, wantField: "time_zone"},
		{body: `{"provider_id":"p","kind":"accommodation","name":"Hotel","city":"Lisbon","time_zone":"Local"}`, wantField: "time_zone"},
		{body: `{"provider_id":"p","kind":"accommodation","name":"Hotel","city":"Lisbon","time_zone":"Mars/Olympus"}`, wantField: "time_zone"},
		{body: `{"provider_id":"p","kind":"accommodation","name":"Hotel","city":"Lisbon","time_zone":"../../etc/passwd"}`, wantField: "time_zone"},
		{body: `{"id":"Hotel",` + ok + `}`, wantField: "id"},
		{body: `{` + ok + `,"attributes":{"":"x"}}`, wantField: "attributes"},
		{body: `{` + ok + `,"attributes":{"` + strings.Repeat("k", 65) + `":"x"}}`, wantField: "attributes"},
		{body: `{` + ok + `,"attributes":{"k":"` + strings.Repeat("v", 1001) + `"}}`, wantField: "attributes"},
		{body: `{` + ok + `,"attributes":{` + strings.Join(manyAttrs, ",") + `}}`, wantField: "attributes"},
		{body: `{` + ok + `,"attributes":{"stars":4}}`, wantField: "attributes"},
		{body: `{` + ok + `,"attributes":["x"]}`, wantField: "attributes"},
		{body: `{` + ok + `,"rating":5}`, wantField: "rating"},
	}
	for _, tt := range tests {
		got, p := decodeListingRequest([]byte(tt.body))
		if tt.wantField != "" {
			if f := problemField(p); p == nil || f != tt.wantField || p.Status != 400 {
				t.Errorf("decodeListingRequest(%q) = %+v, %v, want a 400 naming %q", tt.body, got, describe(p), tt.wantField)
			}
			continue
		}
		if p != nil {
			t.Errorf("decodeListingRequest(%q) = %v, want success", tt.body, describe(p))
			continue
		}
		if tt.want.ID == "" {
			if !strings.HasPrefix(got.ID, "lst-") || !validID(got.ID) {
				t.Errorf("decodeListingRequest(%q) id = %q, want a generated lst-… id", tt.body, got.ID)
			}
			tt.want.ID = got.ID
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("decodeListingRequest(%q) = %+v, want %+v", tt.body, got, tt.want)
		}
	}
}

func TestDecodeResourceRequest(t *testing.T) {
	tests := []struct {
		body      string
		want      persistence.Resource // ID "" means a generated id
		wantField string
	}{
		{body: `{"id":"room-101","name":"Room 101","slot":{"unit":"night"},"capacity":1}`,
			want: persistence.Resource{ID: "room-101", ListingID: "hotel", Name: "Room 101", Unit: persistence.SlotNight, Capacity: 1, HoldTTL: 10 * time.Minute}},
		{body: `{"name":"Table 1","slot":{"unit":"minutes","minutes":30},"capacity":1,"hold_ttl_seconds":60}`,
			want: persistence.Resource{ListingID: "hotel", Name: "Table 1", Unit: persistence.SlotMinutes, SlotMinutes: 30, Capacity: 1, HoldTTL: time.Minute}},
		{body: `{"name":"Pool","slot":{"unit":"single"},"capacity":1000000,"hold_ttl_seconds":86400}`,
			want: persistence.Resource{ListingID: "hotel", Name: "Pool", Unit: persistence.SlotSingle, Capacity: 1_000_000, HoldTTL: 24 * time.Hour}},
		{body: `{"name":"Day","slot":{"unit":"minutes","minutes":1440},"capacity":2,"hold_ttl_seconds":1}`,
			want: persistence.Resource{ListingID: "hotel", Name: "Day", Unit: persistence.SlotMinutes, SlotMinutes: 1440, Capacity: 2, HoldTTL: time.Second}},
		{body: `{"name":"Five","slot":{"unit":"minutes","minutes":5},"capacity":1}`,
			want: persistence.Resource{ListingID: "hotel", Name: "Five", Unit: persistence.SlotMinutes, SlotMinutes: 5, Capacity: 1, HoldTTL: 10 * time.Minute}},

		{body: `{"slot":{"unit":"night"},"capacity":1}`, wantField: "name"},
		{body: `{"name":"x","capacity":1}`, wantField: "slot.unit"},
		{body: `{"name":"x","slot":{"unit":"hour"},"capacity":1}`, wantField: "slot.unit"},
		{body: `{"name":"x","slot":{"unit":"night","minutes":30},"capacity":1}`, wantField: "slot.minutes"},
		{body: `{"name":"x","slot":{"unit":"single","minutes":30},"capacity":1}`, wantField: "slot.minutes"},
		{body: `{"name":"x","slot":{"unit":"minutes"},"capacity":1}`, wantField: "slot.minutes"},
		{body: `{"name":"x","slot":{"unit":"minutes","minutes":4},"capacity":1}`, wantField: "slot.minutes"},
		{body: `{"name":"x","slot":{"unit":"minutes","minutes":7},"capacity":1}`, wantField: "slot.minutes"},
		{body: `{"name":"x","slot":{"unit":"minutes","minutes":2880},"capacity":1}`, wantField: "slot.minutes"},
		{body: `{"name":"x","slot":{"unit":"minutes","minutes":-30},"capacity":1}`, wantField: "slot.minutes"},
		{body: `{"name":"x","slot":{"unit":"minutes","minutes":"30"},"capacity":1}`, wantField: "slot.minutes"},
		{body: `{"name":"x","slot":{"unit":"night"}}`, wantField: "capacity"},
		{body: `{"name":"x","slot":{"unit":"night"},"capacity":0}`, wantField: "capacity"},
		{body: `{"name":"x","slot":{"unit":"night"},"capacity":-1}`, wantField: "capacity"},
		{body: `{"name":"x","slot":{"unit":"night"},"capacity":1000001}`, wantField: "capacity"},
		{body: `{"name":"x","slot":{"unit":"night"},"capacity":"5"}`, wantField: "capacity"},
		{body: `{"name":"x","slot":{"unit":"night"},"capacity":1,"hold_ttl_seconds":0}`, wantField: "hold_ttl_seconds"},
		{body: `{"name":"x","slot":{"unit":"night"},"capacity":1,"hold_ttl_seconds":86401}`, wantField: "hold_ttl_seconds"},
		{body: `{"name":"x","slot":{"unit":"night"},"capacity":1,"hold_ttl_seconds":-5}`, wantField: "hold_ttl_seconds"},
		{body: `{"id":"a_b","name":"x","slot":{"unit":"night"},"capacity":1}`, wantField: "id"},
		{body: `{"name":"x","slot":{"unit":"night"},"capacity":1,"price":10}`, wantField: "price"},
		{body: `{"name":"x","slot":"night","capacity":1}`, wantField: "slot"},
	}
	for _, tt := range tests {
		got, p := decodeResourceRequest([]byte(tt.body), "hotel")
		if tt.wantField != "" {
			if f := problemField(p); p == nil || f != tt.wantField || p.Status != 400 {
				t.Errorf("decodeResourceRequest(%q) = %+v, %v, want a 400 naming %q", tt.body, got, describe(p), tt.wantField)
			}
			continue
		}
		if p != nil {
			t.Errorf("decodeResourceRequest(%q) = %v, want success", tt.body, describe(p))
			continue
		}
		if tt.want.ID == "" {
			if !strings.HasPrefix(got.ID, "res-") || !validID(got.ID) {
				t.Errorf("decodeResourceRequest(%q) id = %q, want a generated res-… id", tt.body, got.ID)
			}
			tt.want.ID = got.ID
		}
		if got != tt.want {
			t.Errorf("decodeResourceRequest(%q) = %+v, want %+v", tt.body, got, tt.want)
		}
	}
}
