"""Where an ingested source folder lands under ``parent_ref``: in a new folder named after it, or straight in.

``source_folder`` (the default): ``parent_ref`` gets one new child, a folder named after the source folder
(its title; found again by SourceID on a later run), holding the source's files and sub-folders.
``contents``: the source's files and sub-folders become children of ``parent_ref`` itself, as Preservica's
OPEX ingest allows for a package whose files sit at the root of the zip.
"""

from __future__ import annotations

from typing import Literal, get_args

from airflow_provider_preservica.exceptions import PreservicaConfigError

FolderLayout = Literal["source_folder", "contents"]
FOLDER_LAYOUTS: tuple[str, ...] = get_args(FolderLayout)


def check_folder_layout(value: str) -> FolderLayout:
    if value not in FOLDER_LAYOUTS:
        raise PreservicaConfigError(
            f"folder_layout must be one of {', '.join(map(repr, FOLDER_LAYOUTS))}, not {value!r}: 'source_folder' "
            "ingests into a new folder named after the source under parent_ref, 'contents' puts the source's "
            "files and sub-folders straight into parent_ref"
        )
    return value  # type: ignore[return-value]
