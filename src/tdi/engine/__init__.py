"""What tdi asks of a container engine (the protocol), the Docker implementation, image
references, registries, and the tests' Testinfra backend.
"""
