"""Ingest stage: mapping files, validation, quarantine and atomic loads."""
from zhizao.ingest.load import IngestError, LoadReport, load_file, load_records, read_sql
from zhizao.ingest.mapping import Mapping, MappingError, load_mapping

__all__ = [
           "IngestError",
           "LoadReport",
           "Mapping",
           "MappingError",
           "load_file",
           "load_mapping",
           "load_records",
           "read_sql",
]
