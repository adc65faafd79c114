"""The paper engine: entries, exits, fills, risk and KPIs. Plain typed inputs only."""
