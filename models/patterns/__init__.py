"""STIX 2.1 patterning for indicator sweeps: parsed with the OASIS stix2-patterns grammar (through the stix2
library's AST builder), evaluated by our engine over the same telemetry readers and field normalisation as the
Sigma hunt."""
