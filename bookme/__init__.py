"""Settings, embedded services and the `bookme` command line."""
