"""Decision documents: the DCO plan as a five-paragraph order, executive deck, PDFs, charts."""
