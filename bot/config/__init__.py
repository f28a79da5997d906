"""The `.bosun/` configuration: typed models, safe YAML loading, JSON Schema and lint."""
