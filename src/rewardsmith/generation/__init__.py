"""Generation-time helpers (torch/transformers): early rejection with partial reward models."""
