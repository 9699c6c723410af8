"""Where a file job runs: on the worker, on LSF over SSH, or in a Kubernetes pod."""
