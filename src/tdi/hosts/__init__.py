"""The hosts of a run: containers booted like servers, their networks, records and images."""
