"""One router per resource: bookings, admin, health, metrics."""
