"""Reading training datasets: row counts, column types, the first bad row."""
