"""GitHub's REST contract, served by Prism from GitHub's own OpenAPI description."""
