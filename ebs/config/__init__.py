"""Configuration: schema, loading, package lists and the rules derived from them."""
