"""KPI stage: interval algebra, ISO 22400 elements, KPIs, roll-up and data quality."""
