"""`bosun demo`: Bosun's whole loop on one machine, against a local stand-in forge."""
