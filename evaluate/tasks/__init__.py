"""One spec per evaluation task (what it reads, its run, its statistics, its report details)."""
