package bookdv1

// APIName is the status as the HTTP API and the logs write it: "held",
// "confirmed", "released", "cancelled", "expired" ("unknown" otherwise).
func (s HoldStatus) APIName() string {
	switch s {
	case HoldStatus_HOLD_STATUS_HELD:
		return "held"
	case HoldStatus_HOLD_STATUS_CONFIRMED:
		return "confirmed"
	case HoldStatus_HOLD_STATUS_RELEASED:
		return "released"
	case HoldStatus_HOLD_STATUS_CANCELLED:
		return "cancelled"
	case HoldStatus_HOLD_STATUS_EXPIRED:
		return "expired"
	}
	return "unknown"
}
