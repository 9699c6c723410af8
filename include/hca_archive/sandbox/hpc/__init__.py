"""The compose ``hpc`` service: OpenSSH in front of the LSF stand-in (``sandbox/lsf``)."""
