"""The executor: runs one execution of a workflow graph. No SQL, no HTTP framework."""
