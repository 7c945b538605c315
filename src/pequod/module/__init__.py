"""Platform and policy modules: where they come from, their content digest and their metadata."""
