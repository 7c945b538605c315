"""Module delivery from OCI registries and Git repositories: references, fetchers, the
content-addressed cache and the resolution of tags and branches."""
