"""Alert files: the Avro and Parquet packets of Fink's Data Transfer service and livestream.

Reading only: :mod:`~finkcube.bulk.files` finds the files (paths, folders, globs, fsspec
URLs), :mod:`~finkcube.bulk.packets` reads their ids (a cheap first pass) and chosen rows in
full (fastavro, pyarrow). Turning packets into cubes is :mod:`finkcube.pipeline.ingest`'s job.
"""

from finkcube.bulk.files import AlertFile, find_alert_files
from finkcube.bulk.packets import FileIndex, Packet, read_packets, scan_file

__all__ = ["AlertFile", "FileIndex", "Packet", "find_alert_files", "read_packets", "scan_file"]
