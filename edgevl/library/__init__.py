"""Library-scale runs: thousands of shelf photos matched to a catalogue by a local process pool or
on a Ray cluster, with results committed photo by photo so that an interrupted run resumes."""

from edgevl.library.records import RunSummary, error_record, photo_record, table_rows
from edgevl.library.run import RunConfig, read_photo_list, run_library
from edgevl.library.store import ResultStore

__all__ = ["ResultStore", "RunConfig", "RunSummary", "error_record", "photo_record", "read_photo_list",
           "run_library", "table_rows"]
