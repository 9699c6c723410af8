"""Local, faithful stand-ins of the services an archiving run talks to (tests and demos only).

``hca-archive sandbox start --state-dir DIR`` serves on 127.0.0.1, each on its own port:

- ``archiver.py``: the archiver service (``Api-Key``), background planning and completion;
- ``ingest.py``: the ingest API's envelopes and archive records (HAL JSON);
- ``dsp.py`` and ``tus.py``: the DSP submission API (AAP bearer tokens) and its tus file endpoint;
- ``aap.py``: the AAP token endpoint (basic auth in, JWT out);
- ``s3.py``: moto's S3 server with the seeded bucket;
- ``admin.py``: seeding, a summary, and the fault knobs of ``faults.py`` (never faulted itself).

All state is in ``DIR/state.sqlite`` (``store.py``); background work is a durable task queue
(``tasks.py``), so a restart loses nothing. ``filestate.py`` decides what DSP knows about each
data file; ``seeding.py`` and ``fastq_gen.py`` make the submissions and their reads.
"""
