"""Running the pipeline: generate (plan, workers, resume), the filter command, role-play, progress, Ray."""
