"""STIX 2.1: deterministic ids, markings, object builders and the object store table."""
