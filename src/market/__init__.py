"""Market data sources. Each yields `MarketChunk`s of top-of-book quotes on a tick grid."""
